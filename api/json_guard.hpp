#pragma once
// The strict reading of a JSON request body, before Boost.JSON builds it.
//
// Boost.JSON keeps the last of duplicate object keys and turns integers too
// big for 64 bits into doubles; a client that sends either meant something
// else, so both are refused here. Also refused: invalid UTF-8 anywhere in the
// body, and strings, arrays or nesting past the limits (each a named setting,
// common/config.hpp).
//
// Problems (all 400), each with the JSON pointer it concerns when known:
//   invalid_utf8             the body is not valid UTF-8
//   json_too_deep            arrays/objects nested past max_depth
//   json_string_too_long     a string or member name longer than max_string bytes
//   json_array_too_long      an array of more than max_array elements
//   json_duplicate_key       an object names the same member twice
//   json_number_out_of_range an integer outside [-2^63, 2^64) or a number
//                            that is not a finite double (1e400)
//   invalid_json             any other syntax error
//
// Thread-safety: pure.

#include "common/problem.hpp"

#include <cstddef>
#include <optional>
#include <string_view>

namespace jobs {

struct json_limits {
  int max_depth = 32;
  std::size_t max_string = 1 << 20;
  std::size_t max_array = 10000;
};

/// nullopt when `body` is one JSON document within `limits`, else the problem.
std::optional<problem> check_json(std::string_view body, const json_limits& limits);

/// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace jobs
