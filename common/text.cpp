#include "common/text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <cmath>

namespace jobs {

namespace {
// The length of the sequence a byte leads: 1 for ASCII, 2 to 4, or 0 when
// no well-formed sequence starts with it (a continuation byte, 0xC0, 0xC1,
// 0xF5 and above).
std::size_t lead_length(unsigned char c) {
  return c < 0x80                 ? 1
         : c >= 0xC2 && c <= 0xDF ? 2
         : c >= 0xE0 && c <= 0xEF ? 3
         : c >= 0xF0 && c <= 0xF4 ? 4
                                  : 0;
}
}  // namespace

std::size_t utf8_length(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto c0 = b(0);
  std::size_t n = lead_length(c0);
  if (n == 1) return 1;
  if (n == 0 || s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i)
    if ((b(i) & 0xC0) != 0x80) return 0;
  if ((c0 == 0xE0 && b(1) < 0xA0) || (c0 == 0xED && b(1) >= 0xA0) || (c0 == 0xF0 && b(1) < 0x90) ||
      (c0 == 0xF4 && b(1) >= 0x90))
    return 0;
  return n;
}

std::string utf8_text(std::string_view s, std::size_t limit) {
  std::string out;
  out.reserve(std::min(s.size(), limit));
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_length(s.substr(i));
    auto piece = n && s[i] != '\0' ? s.substr(i, n) : utf8_replacement;
    if (out.size() + piece.size() > limit) break;
    out += piece;
    i += n ? n : 1;
  }
  return out;
}

std::size_t utf8_whole_prefix(std::string_view s) {
  // The last sequence starts at most 3 bytes back; past its lead byte only
  // continuation bytes (10xxxxxx).
  for (std::size_t k = 1; k <= std::min<std::size_t>(3, s.size()); ++k) {
    auto c = static_cast<unsigned char>(s[s.size() - k]);
    if ((c & 0xC0) == 0x80) continue;
    return lead_length(c) > k ? s.size() - k : s.size();
  }
  return s.size();
}

bool is_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_length(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool is_field_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

bool is_storable_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_length(s.substr(i));
    if (n == 0 || s[i] == '\0') return false;
    i += n;
  }
  return true;
}

bool is_storable(const boost::json::value& v) {
  if (const auto* s = v.if_string()) return is_storable_text(*s);
  if (const auto* d = v.if_double()) return std::isfinite(*d);
  if (const auto* a = v.if_array())
    return std::all_of(a->begin(), a->end(), [](const auto& e) { return is_storable(e); });
  if (const auto* o = v.if_object())
    return std::all_of(o->begin(), o->end(), [](const auto& kv) {
      return is_storable_text(kv.key()) && is_storable(kv.value());
    });
  return true;
}

void make_storable(boost::json::value& v) {
  if (auto* s = v.if_string()) {
    if (!is_storable_text(*s)) *s = utf8_text(*s);
  } else if (auto* d = v.if_double()) {
    // JSON has no NaN or infinity (JavaScript's JSON.stringify writes null).
    if (!std::isfinite(*d)) v = nullptr;
  } else if (auto* a = v.if_array()) {
    for (auto& e : *a) make_storable(e);
  } else if (auto* o = v.if_object()) {
    // Keys cannot be changed in place: rebuild the object when one must.
    bool bad_key = false;
    for (auto& [k, e] : *o) {
      bad_key = bad_key || !is_storable_text(k);
      make_storable(e);
    }
    if (!bad_key) return;
    boost::json::object fixed;
    for (auto& [k, e] : *o) fixed[utf8_text(k)] = std::move(e);
    *o = std::move(fixed);
  }
}

}  // namespace jobs
