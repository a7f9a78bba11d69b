#pragma once
// The body of POST /v1/keys: {"name"?: label (up to 100 characters),
// "role"?: "admin" | "submitter" (default) | "viewer",
// "expires_at"?: RFC 3339, in the future}. Unknown members are refused; an
// empty body is `{}` (every member is optional).
//
// Thread-safety: pure.

#include "common/problem.hpp"
#include "common/time.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace jobs {

/// A key to create: its label, role and optional expiry (RFC 3339, empty: never).
struct key_request {
  std::string name;
  std::string role = "submitter";
  std::string expires_at;
};

std::variant<key_request, problem> parse_key_request(std::string_view body, sys_time now);

}  // namespace jobs
