#include "api/http_limits.hpp"

#include "api/submission.hpp"

#include <fmt/format.h>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jobs {

namespace {
namespace http = boost::beast::http;

// The elements of the Expect fields (RFC 9110 5.6.1: comma-separated, empty
// ones ignored), each trimmed: how many, and how many are 100-continue.
std::pair<int, int> expectations(const http::request_header<>& head) {
  constexpr std::string_view token = "100-continue";
  int all = 0, go_on = 0;
  auto [it, end] = head.equal_range(http::field::expect);
  for (; it != end; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      auto e = v.substr(0, comma);
      v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
      while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
      while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
      if (e.empty()) continue;
      ++all;
      if (e.size() == token.size() &&
          std::equal(e.begin(), e.end(), token.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          }))
        ++go_on;
    }
  }
  return {all, go_on};
}

// The transfer codings of the Transfer-Encoding fields, in order, lower-cased
// without their parameters (RFC 9112 7: a comma-separated list, fields
// joined in order).
std::vector<std::string> transfer_codings(const http::request_header<>& head) {
  std::vector<std::string> out;
  auto [it, end] = head.equal_range(http::field::transfer_encoding);
  for (; it != end; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      auto e = v.substr(0, std::min(comma, v.find(';')));
      v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
      while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
      while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
      if (e.empty()) continue;
      std::string c(e);
      for (auto& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.push_back(std::move(c));
    }
  }
  return out;
}
}  // namespace

std::optional<problem> check_request_head(const boost::beast::http::request_header<>& head,
                                          const head_limits& limits) {
  if (head.target().size() > limits.url_limit)
    return make_problem(414, "url_too_long",
                        fmt::format("the request target is limited to {} bytes", limits.url_limit));
  auto fields = std::distance(head.begin(), head.end());
  if (fields > limits.max_headers)
    return make_problem(431, "too_many_headers",
                        fmt::format("a request may carry {} header fields", limits.max_headers));
  if (auto [all, go_on] = expectations(head); all > go_on)
    return make_problem(417, "expectation_failed",
                        "the only expectation this server meets is Expect: 100-continue");
  if (head.count(http::field::transfer_encoding) > 0) {
    // Beast reads a body only when chunked is the last coding; otherwise
    // the bytes after the head would be read as the next request.
    auto codings = transfer_codings(head);
    if (codings.empty() || codings.back() != "chunked")
      return make_problem(400, "bad_request",
                          "a request's Transfer-Encoding must end with chunked (RFC 9112 6.3)");
    if (codings.size() > 1)
      return make_problem(501, "unsupported_transfer_coding",
                          "the only transfer coding this server reads is chunked");
  }
  return std::nullopt;
}

bool wants_continue(const http::request_header<>& head) {
  auto [all, go_on] = expectations(head);
  return head.version() >= 11 && go_on > 0 && all == go_on;
}

problem read_problem(const boost::system::error_code& ec, std::size_t body_limit) {
  if (ec == http::error::body_limit)
    return make_problem(413, "body_too_large", fmt::format("the limit is {} bytes", body_limit));
  if (ec == http::error::header_limit)
    return make_problem(431, "header_too_large", "request headers are too large");
  if (ec == http::error::buffer_overflow)
    return make_problem(400, "bad_request",
                        "a chunk's size line, with its extensions, is too long");
  // Beast's own words for the rest are terse ("bad value"): say which part.
  static const std::pair<http::error, const char*> parts[] = {
      {http::error::bad_value,
       "a header field's value is malformed: no control character (but tab) may be in it"},
      {http::error::bad_field,
       "a header field's name is malformed: letters, digits and !#$%&'*+-.^_`|~ only"},
      {http::error::bad_method, "the request line's method is malformed"},
      {http::error::bad_target, "the request line's target is malformed"},
      {http::error::bad_version, "the request line's HTTP version is malformed"},
      {http::error::bad_line_ending, "a line of the request head does not end in CRLF"},
      {http::error::bad_obs_fold,
       "a header field is folded over lines (obsolete line folding is not accepted)"},
      {http::error::bad_content_length, "Content-Length is malformed"},
      {http::error::bad_transfer_encoding,
       "Transfer-Encoding is malformed (chunked must be last, once)"},
      {http::error::bad_chunk, "the chunked body is malformed"},
      {http::error::bad_chunk_extension, "the chunked body is malformed"},
  };
  const char* what = nullptr;
  for (const auto& [e, text] : parts)
    if (ec == e) what = text;
  return make_problem(400, "bad_request", what ? what : ec.message());
}

}  // namespace jobs
