#pragma once
// Standard base64 (RFC 4648 section 4: A-Z a-z 0-9 + /, no white space), as
// job payloads carry bytes: an email's attachments (padding required) and a
// hash job's input (padding optional). The API checks a payload's base64
// with the same function its worker decodes it with (a schema's
// "contentEncoding": "base64", common/schema.hpp), so that what the worker
// would refuse is refused with a 400 instead.
//
// Pure functions; thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace jobs {

enum class base64_padding {
  required,  ///< a multiple of 4 characters, `=` or `==` completing the last quantum
  optional,  ///< as required, or the same without its `=`
};

/// The bytes of `in`, or nothing when it is not base64; then `why` (if given)
/// says what is wrong: "its length is impossible", "unexpected character at
/// offset N", "padding before the end".
std::optional<std::string> decode_base64(std::string_view in, base64_padding padding,
                                         std::string* why = nullptr);

/// `bytes` in padded base64.
std::string encode_base64(std::string_view bytes);

/// Whether decode_base64() would decode `in` (without making the bytes).
bool is_base64(std::string_view in, base64_padding padding, std::string* why = nullptr);

}  // namespace jobs
