#pragma once
// What a client sees when a request fails: RFC 9457 problem details.
//
// `code` is stable and documented (README, "Errors"); clients branch on it.
// `pointer` is the RFC 6901 JSON pointer of the failing member, when there is
// one. What goes to the log is separate and may say more.
//
// Thread-safety: a value type.

#include <boost/json/value.hpp>

#include <string>
#include <vector>

namespace jobs {

struct problem {
  int status = 400;
  std::string code;       ///< stable machine-readable code, e.g. "payload_invalid"
  std::string title;      ///< short human summary of the code
  std::string detail;     ///< this occurrence, in words
  std::string pointer;    ///< JSON pointer into the request body, or empty
  std::string parameter;  ///< the query parameter at fault, or empty
  int retry_after_s = 0;  ///< the Retry-After header's seconds, when set (429, 503)
  /// For a request made of many parts (a batch): each part's own problem,
  /// shown as `errors` [{code, title, detail, pointer}].
  std::vector<problem> errors;

  /// The problem+json body.
  boost::json::object to_json() const;
};

}  // namespace jobs
