#include "api/json_guard.hpp"

#include "api/submission.hpp"
#include "common/schema.hpp"

#include <fmt/format.h>
#include <boost/json/basic_parser_impl.hpp>

#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace jobs {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

namespace {

struct frame {
  bool is_array = false;
  std::size_t count = 0;
  std::string key;  // the member being read (objects)
  std::set<std::string, std::less<>> keys;
};

// A basic_parser handler that builds nothing: it only checks.
struct checker {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  const json_limits& limits;
  std::vector<frame> stack;
  std::string number;  // the text of the number being read
  bool in_string = false, in_key = false, in_number = false;
  std::optional<problem> found;

  std::string pointer() const {
    std::string out;
    for (const auto& f : stack)
      out += "/" +
             (f.is_array ? std::to_string(f.count ? f.count - 1 : 0) : json_pointer_escape(f.key));
    return out;
  }
  bool fail(boost::json::error_code& ec, const char* code, std::string detail) {
    found = make_problem(400, code, std::move(detail), pointer());
    ec = boost::json::error::syntax;
    return false;
  }
  // Every value (scalar or container) starts with this.
  bool value(boost::json::error_code& ec) {
    if (stack.empty() || !stack.back().is_array) return true;
    if (++stack.back().count > limits.max_array)
      return fail(ec, "json_array_too_long",
                  fmt::format("arrays are limited to {} elements", limits.max_array));
    return true;
  }
  bool open(bool is_array, boost::json::error_code& ec) {
    if (!value(ec)) return false;
    stack.push_back(frame{is_array});
    return true;
  }
  bool close() {
    stack.pop_back();
    return true;
  }

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_array_begin(boost::json::error_code& ec) { return open(true, ec); }
  bool on_array_end(std::size_t, boost::json::error_code&) { return close(); }
  bool on_object_begin(boost::json::error_code& ec) { return open(false, ec); }
  bool on_object_end(std::size_t, boost::json::error_code&) { return close(); }
  bool string_size(std::size_t n, boost::json::error_code& ec) {
    if (n <= limits.max_string) return true;
    return fail(ec, "json_string_too_long",
                fmt::format("strings are limited to {} bytes", limits.max_string));
  }
  bool on_string_part(std::string_view, std::size_t n, boost::json::error_code& ec) {
    if (!in_string && !value(ec)) return false;
    in_string = true;
    return string_size(n, ec);
  }
  bool on_string(std::string_view, std::size_t n, boost::json::error_code& ec) {
    if (!in_string && !value(ec)) return false;
    in_string = false;
    return string_size(n, ec);
  }
  bool on_key_part(std::string_view s, std::size_t n, boost::json::error_code& ec) {
    if (!in_key) stack.back().key.clear();
    in_key = true;
    stack.back().key.append(s);
    return string_size(n, ec);
  }
  bool on_key(std::string_view s, std::size_t n, boost::json::error_code& ec) {
    auto& f = stack.back();
    if (!in_key) f.key.clear();
    in_key = false;
    f.key.append(s);
    if (!string_size(n, ec)) return false;
    if (!f.keys.insert(f.key).second)
      return fail(ec, "json_duplicate_key",
                  fmt::format("member {:?} appears more than once", f.key));
    return true;
  }
  bool on_number_part(std::string_view s, boost::json::error_code& ec) {
    if (!in_number && !value(ec)) return false;
    in_number = true;
    number.append(s);
    return true;
  }
  bool scalar(boost::json::error_code& ec) {
    bool seen = in_number;
    in_number = false;
    number.clear();
    return seen || value(ec);
  }
  bool on_int64(std::int64_t, std::string_view, boost::json::error_code& ec) { return scalar(ec); }
  bool on_uint64(std::uint64_t, std::string_view, boost::json::error_code& ec) {
    return scalar(ec);
  }
  bool on_double(double d, std::string_view s, boost::json::error_code& ec) {
    std::string text = number + std::string(s);
    if (!scalar(ec)) return false;
    // Boost.JSON reads an integer past 64 bits as a double: a silent rounding.
    bool integer = text.find_first_of(".eE") == std::string::npos;
    if (integer || !std::isfinite(d))
      return fail(ec, "json_number_out_of_range",
                  fmt::format("{} is out of range (integers: 64 bits; numbers: finite doubles)",
                              text.size() > 40 ? text.substr(0, 40) + "..." : text));
    return true;
  }
  bool on_bool(bool, boost::json::error_code& ec) { return value(ec); }
  bool on_null(boost::json::error_code& ec) { return value(ec); }
  bool on_comment_part(std::string_view, boost::json::error_code&) { return true; }
  bool on_comment(std::string_view, boost::json::error_code&) { return true; }
};

// Where a body stopped being JSON: Boost.JSON's words, the byte offset, and
// for an escaped lone UTF-16 surrogate (which it calls a syntax error) what
// is wrong with it.
std::string syntax_detail(std::string_view body, std::size_t used,
                          const boost::json::error_code& ec) {
  std::string detail = fmt::format("{} at byte {}", ec.message(), used);
  auto from = used > 12 ? used - 12 : 0;
  auto window = body.substr(from, std::min<std::size_t>(used - from + 1, body.size() - from));
  for (auto at = window.find("\\u"); at != std::string_view::npos;
       at = window.find("\\u", at + 1)) {
    auto hex = window.substr(at + 2, 2);
    if (hex.size() == 2 && (hex[0] == 'd' || hex[0] == 'D') &&
        std::string_view("89abcdefABCDEF").find(hex[1]) != std::string_view::npos)
      return detail + fmt::format(
                          ": {} is a lone UTF-16 surrogate; a character beyond U+FFFF is "
                          "escaped as a pair, e.g. \\ud83d\\ude00",
                          window.substr(at, 6));
  }
  return detail;
}

}  // namespace

std::optional<problem> check_json(std::string_view body, const json_limits& limits) {
  if (!is_valid_utf8(body))
    return make_problem(400, "invalid_utf8", "the request body is not valid UTF-8");
  boost::json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(limits.max_depth);
  boost::json::basic_parser<checker> p(opts, checker{limits});
  boost::json::error_code ec;
  auto used = p.write_some(false, body.data(), body.size(), ec);
  if (p.handler().found) return p.handler().found;
  if (!ec && body.substr(used).find_first_not_of(" \t\r\n") != std::string_view::npos)
    return make_problem(400, "invalid_json", "extra data after the JSON document");
  if (ec == boost::json::error::too_deep)
    return make_problem(400, "json_too_deep",
                        fmt::format("nesting is limited to {} levels", limits.max_depth));
  if (ec) return make_problem(400, "invalid_json", syntax_detail(body, used, ec));
  return std::nullopt;
}

}  // namespace jobs
