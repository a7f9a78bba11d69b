#pragma once
// The limits on a request's head and how a broken transport read is told to
// the client: pure, so the server, its tests and the fuzz targets share them.
//
// Problems:
//   414 url_too_long       the request target is longer than url_limit bytes
//   431 too_many_headers   more than max_headers header fields
//   431 header_too_large   the header block is over the server's header_limit
//   417 expectation_failed an Expect other than 100-continue (RFC 9110 10.1.1)
//   400 bad_request        a Transfer-Encoding whose last coding is not chunked
//                          (RFC 9112 6.3: the body's length is unknown)
//   501 unsupported_transfer_coding  one with codings before chunked (gzip)
//   413 body_too_large     Content-Length or the body read is over the body limit
//   400 bad_request        a chunk's size line (with its extensions) over what
//                          the read buffer holds, and anything else Beast's
//                          parser refuses
//
// Thread-safety: pure.

#include "common/problem.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <optional>

namespace jobs {

struct head_limits {
  std::size_t url_limit = 8192;
  int max_headers = 100;
};

/// nullopt when the head is within `limits` and expects nothing but
/// 100-continue, else the problem.
std::optional<problem> check_request_head(const boost::beast::http::request_header<>& head,
                                          const head_limits& limits);

/// The client waits for `100 Continue` before its body: an HTTP/1.1 request
/// whose Expect is 100-continue (any case; RFC 9110 10.1.1: ignored in 1.0).
bool wants_continue(const boost::beast::http::request_header<>& head);

/// The problem for a read that failed with `ec` (not a timeout or a closed
/// connection); `body_limit` is the limit that applied.
problem read_problem(const boost::system::error_code& ec, std::size_t body_limit);

}  // namespace jobs
