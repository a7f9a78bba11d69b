#pragma once
// Text as PostgreSQL stores it: valid UTF-8 without NUL (and, in JSON, finite
// numbers). Whatever a handler or a remote server hands back (a response
// body, an error message, a result) passes through here before it is
// written, so a stray byte or a NaN can never make a job's outcome
// unwritable.

#include <boost/json/value.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace jobs {

/// U+FFFD, what a malformed byte or a NUL becomes.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

/// The length of the well-formed UTF-8 sequence at the start of `s` (not
/// empty), 0 if malformed (overlong forms, surrogates and code points over
/// U+10FFFF too).
std::size_t utf8_length(std::string_view s);

/// `s` as valid UTF-8 without NUL (a malformed byte or a NUL becomes
/// U+FFFD), at most `limit` bytes, cut at a character boundary.
std::string utf8_text(std::string_view s,
                      std::size_t limit = std::numeric_limits<std::size_t>::max());

/// The length of `s` without a character cut short at its end (the first
/// bytes of a well-formed sequence, as when text is cut at a byte count):
/// text kept from the start of a longer one ends at a character boundary.
std::size_t utf8_whole_prefix(std::string_view s);

/// True when `s` is well-formed UTF-8 (NUL allowed).
bool is_utf8(std::string_view s);

/// True when `s` is valid UTF-8 without NUL (utf8_text would not change it).
bool is_storable_text(std::string_view s);

/// True for a header field value as HTTP and mail allow it (RFC 9110 5.5,
/// RFC 5322 2.2): no control character but horizontal tab, so no CR, LF or
/// NUL that could end a header or start another.
bool is_field_value(std::string_view value);

/// True when every string of `v` (object keys too) is storable text and
/// every number is finite (PostgreSQL's json refuses NaN and infinities).
bool is_storable(const boost::json::value& v);
/// Makes every string of `v` (object keys too) storable text, and every NaN
/// or infinity null (as JavaScript's JSON.stringify does), in place.
void make_storable(boost::json::value& v);

}  // namespace jobs
