#include "workers/webhooks/policy.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

namespace jobs::webhooks {

verdict classify_status(int status) {
  if (status >= 200 && status < 300) return verdict::success;
  if (status == 408 || status == 429 || (status >= 500 && status < 600) ||
      (status >= 300 && status < 400))
    return verdict::retryable;
  return verdict::permanent;
}

namespace {

std::optional<int> number(std::string_view s) {
  int v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// IMF-fixdate, the form HTTP senders must use: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view s) {
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return std::nullopt;
  auto day = number(s.substr(5, 2)), year = number(s.substr(12, 4)), hh = number(s.substr(17, 2)),
       mm = number(s.substr(20, 2)), ss = number(s.substr(23, 2));
  int mon = -1;
  for (int i = 0; i < 12; ++i)
    if (months[i] == s.substr(8, 3)) mon = i;
  if (!day || !year || !hh || !mm || !ss || mon < 0 || *day < 1 || *day > 31 || *hh > 23 ||
      *mm > 59 || *ss > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = *day;
  tm.tm_hour = *hh;
  tm.tm_min = *mm;
  tm.tm_sec = *ss;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::string body_excerpt(std::string_view body, std::size_t limit) {
  std::string out;
  bool gap = false;
  for (std::size_t i = 0; i < body.size();) {
    auto c = static_cast<unsigned char>(body[i]);
    auto n = utf8_length(body.substr(i));
    bool blank = c <= 0x20 || c == 0x7F ||
                 (n == 2 && c == 0xC2 && static_cast<unsigned char>(body[i + 1]) < 0xA0);
    if (blank) {
      gap = !out.empty();
      i += n;
      continue;
    }
    auto piece = n ? body.substr(i, n) : utf8_replacement;
    if (out.size() + (gap ? 1 : 0) + piece.size() > limit) {
      out += "\u2026";
      break;
    }
    if (gap) out += ' ';
    gap = false;
    out += piece;
    i += n ? n : 1;
  }
  return out;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v,
                                                      std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds cap) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  std::chrono::seconds d;
  if (!v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string_view::npos) {
    long long n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    d = std::chrono::seconds(n);
  } else if (auto at = parse_imf_fixdate(v)) {
    d = std::chrono::ceil<std::chrono::seconds>(*at - now);
  } else {
    return std::nullopt;
  }
  return std::clamp(d, std::chrono::seconds(0), cap);
}

retry_schedule retry_schedule::standard() {
  using namespace std::chrono_literals;
  return {{5s, 5min, 30min, 2h, 5h, 10h, 10h}};
}

std::chrono::milliseconds retry_schedule::after(int attempt) const {
  if (gaps.empty()) return std::chrono::milliseconds(0);
  auto i = static_cast<std::size_t>(std::max(attempt, 1) - 1);
  return gaps[std::min(i, gaps.size() - 1)];
}

}  // namespace jobs::webhooks
