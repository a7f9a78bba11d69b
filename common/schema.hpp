#pragma once
// Job payloads checked against JSON Schemas (draft-07), one schema per job type.
//
// A registry is built once, at start-up, from a directory of files named
// `<queue>.<type>.schema.json`. The queue is the part before the first dot and
// the type may itself contain dots: `processing.csv.aggregate.schema.json` is
// queue `processing`, type `csv.aggregate`. Other files are ignored.
//
// Beyond draft-07 as valijson 1.0 checks it, a schema may say what a string
// member must be for its worker to take it (common/detail/schema_keywords.hpp):
//
//   "contentEncoding": "base64"       padded standard base64 (common/base64.hpp)
//   "x-base64-padding": "optional"    beside it: the padding may be left out
//   "format": "webhook-url"           a URL the webhooks worker delivers to
//                                     (common/webhook_url.hpp)
//   "format": "http-field-value"      a header value: no control character
//                                     but tab (common/text.hpp)
//
// Throws (constructor only): std::runtime_error naming the file when the
// directory is missing or holds no schema, a file is misnamed or unreadable,
// is not JSON, declares a `$schema` other than draft-07, is not a valid schema
// (as valijson 1.0 parses it), has a `pattern` that std::regex rejects or
// beside a `maxLength` over `max_regex_input` (see Limits), uses
// `patternProperties` (unsupported, see below), or names a format or
// contentEncoding that is not checked (a typo must not turn a check off).
//
// Limits: libstdc++'s std::regex recurses per character and overflows the stack
// on long strings, so `pattern` is only tried on strings of at most
// `max_regex_input` characters (or the schema's own `maxLength`, which may not
// be larger: a longer string would fail as too long below it), and
// the regex-backed formats (`date`, `time`, `date-time`) on strings of at most
// `max_format_input`; longer strings fail as if `maxLength` said so. The other
// draft-07 formats (`uri`, `email`, ...) are not checked by valijson 1.0.
// Payload depth is bounded by the HTTP layer, not here.
//
// Thread-safety: after construction every const member may be called from any
// number of threads at once; the compiled schemas are read-only.

#include "common/problem.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jobs {

/// One RFC 6901 reference token: `~` becomes `~0` and `/` becomes `~1`.
std::string json_pointer_escape(std::string_view token);

class schema_registry final {
 public:
  static constexpr std::size_t max_regex_input = 1024;  ///< characters; see "Limits"
  static constexpr std::size_t max_format_input = 128;  ///< characters; see "Limits"

  /// Loads and compiles every schema in `dir` (e.g. `schemas/jobs`).
  explicit schema_registry(const std::filesystem::path& dir);
  ~schema_registry();
  schema_registry(schema_registry&&) noexcept;             ///< leaves `other` unusable
  schema_registry& operator=(schema_registry&&) noexcept;  ///< leaves `other` unusable

  bool has_type(std::string_view queue, std::string_view type) const;

  /// The job types of `queue`, sorted; empty for a queue without schemas.
  std::vector<std::string> types(std::string_view queue) const;

  /// nullopt when `payload` is valid for the type. Otherwise a 400 problem:
  /// - `unknown_job_type`, pointer `/type`, detail listing the queue's types;
  /// - `payload_invalid`, pointer `/payload...` at the most deeply nested
  ///   failing member (first in schema order among equals; for a missing
  ///   required property, the object lacking it; for a property the schema does
  ///   not allow, that property), detail saying what is wrong there.
  /// JSON Schema counts a number without a fraction (5.0) as an integer: a
  /// payload valid only when such numbers are integers is valid, and
  /// `*as_integers` (when given) receives it with them as integers, for the
  /// handlers to read (a payload valid as it is pays nothing for this).
  std::optional<problem> validate(std::string_view queue, std::string_view type,
                                  const boost::json::value& payload,
                                  std::optional<boost::json::value>* as_integers = nullptr) const;

 private:
  struct impl;
  std::unique_ptr<const impl> impl_;
};

}  // namespace jobs
