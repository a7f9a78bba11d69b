#pragma once
// RFC 3339 timestamps, as the API and PostgreSQL exchange them.
// Thread-safety: pure functions.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace jobs {

using sys_time = std::chrono::system_clock::time_point;

/// "2026-11-22T04:15:48.123Z" (UTC, milliseconds).
std::string format_rfc3339(sys_time t);
/// The same to the microsecond (PostgreSQL's timestamps), the rest cut:
/// "2026-11-22T04:15:48.123456Z".
std::string format_rfc3339_us(sys_time t);

/// Accepts RFC 3339 date-times: "2026-11-22T04:15:48Z", with optional
/// fraction (up to 9 digits) and a "Z" or "+hh:mm"/"-hh:mm" offset, from
/// 1970 to the end of the system clock's range (2262-04-11, its nanoseconds
/// run out). A leap second (:60, only at the end of a month in UTC) is read
/// as :59. nullopt for anything else.
std::optional<sys_time> parse_rfc3339(std::string_view s);

}  // namespace jobs
