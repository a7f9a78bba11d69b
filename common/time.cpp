#include "common/time.hpp"

#include <cstdio>
#include <ctime>

namespace jobs {

namespace {
// "YYYY-MM-DDTHH:MM:SS.fffZ" with `digits` of the second's fraction (3 or 6).
std::string format_fraction(sys_time t, int digits) {
  long long per_second = digits == 6 ? 1000000 : 1000;
  auto ticks = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() /
               (1000000 / per_second);
  std::time_t secs = static_cast<std::time_t>(ticks / per_second);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%0*dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, digits,
                static_cast<int>(ticks % per_second));
  return buf;
}
}  // namespace

std::string format_rfc3339(sys_time t) { return format_fraction(t, 3); }

std::string format_rfc3339_us(sys_time t) { return format_fraction(t, 6); }

namespace {
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
}  // namespace

std::optional<sys_time> parse_rfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (y < 1970 || !ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::size_t pos = 19;
  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    long long v = 0;
    // RFC 3339 allows any number of digits: nanoseconds are kept, the rest
    // cut (a bounded run of them, as the whole string is).
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 9) v = v * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t n = pos - start; n < 9; ++n) v *= 10;
    frac = nanoseconds{v};
  }
  if (pos >= s.size()) return std::nullopt;
  minutes offset{0};
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = hours{oh} + minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  // In seconds first: nanosecond clocks end in 2262, and must not wrap.
  sys_seconds t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{std::min(sec, 59)} - offset;
  constexpr auto last = system_clock::time_point::max();
  const auto last_second = floor<seconds>(last);
  if (t < sys_seconds{} || t > last_second) return std::nullopt;
  // RFC 3339 (5.7): second 60 is a leap second, only ever the last second
  // of a month in UTC; it is read as :59. Anywhere else it is no time at all.
  if (sec == 60) {
    auto next = year_month_day{floor<days>(t + seconds{1})};
    if (t + seconds{1} != sys_days{next} || next.day() != day{1}) return std::nullopt;
  }
  auto sub = duration_cast<system_clock::duration>(frac);
  if (t == last_second && sub > last - time_point_cast<system_clock::duration>(last_second))
    return std::nullopt;
  return time_point_cast<system_clock::duration>(t) + sub;
}

}  // namespace jobs
