#include "api/http_limits.hpp"

#include "api/submission.hpp"

#include <fmt/format.h>
#include <boost/beast/http/error.hpp>

#include <iterator>

namespace jobs {

std::optional<problem> check_request_head(const boost::beast::http::request_header<>& head,
                                          const head_limits& limits) {
  if (head.target().size() > limits.url_limit)
    return make_problem(414, "url_too_long",
                        fmt::format("the request target is limited to {} bytes", limits.url_limit));
  auto fields = std::distance(head.begin(), head.end());
  if (fields > limits.max_headers)
    return make_problem(431, "too_many_headers",
                        fmt::format("a request may carry {} header fields", limits.max_headers));
  return std::nullopt;
}

problem read_problem(const boost::system::error_code& ec, std::size_t body_limit) {
  namespace http = boost::beast::http;
  if (ec == http::error::body_limit)
    return make_problem(413, "body_too_large", fmt::format("the limit is {} bytes", body_limit));
  if (ec == http::error::header_limit)
    return make_problem(431, "header_too_large", "request headers are too large");
  return make_problem(400, "bad_request", ec.message());
}

}  // namespace jobs
