#include "common/trace.hpp"

#include "common/random.hpp"

namespace jobs {

namespace {

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool all_zero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::string random_hex(std::size_t bytes) {
  unsigned char buf[16];
  std::string out;
  do {
    random_bytes({buf, bytes});
    out.clear();
    for (std::size_t i = 0; i < bytes; ++i) {
      constexpr char digits[] = "0123456789abcdef";
      out.push_back(digits[buf[i] >> 4]);
      out.push_back(digits[buf[i] & 15]);
    }
  } while (all_zero(out));
  return out;
}

}  // namespace

std::optional<std::string> trace_id_from_traceparent(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags; later versions may append fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  auto version = h.substr(0, 2), trace = h.substr(3, 32), parent = h.substr(36, 16),
       flags = h.substr(53, 2);
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace) || !lower_hex(parent) ||
      !lower_hex(flags) || all_zero(trace) || all_zero(parent))
    return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  return std::string(trace);
}

std::string new_trace_id() { return random_hex(16); }

std::string make_traceparent(std::string_view trace_id) {
  return "00-" + std::string(trace_id) + "-" + random_hex(8) + "-01";
}

}  // namespace jobs
