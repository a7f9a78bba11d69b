#include "api/server.hpp"

#include "common/log.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

namespace jobs {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct http_server::registry {
  std::mutex mu;
  std::set<beast::tcp_stream*> streams;
};

http_server::http_server(server_options o, router& r)
    : opts_(std::move(o)),
      router_(r),
      ioc_(opts_.threads),
      acceptor_(ioc_),
      live_(std::make_unique<registry>()) {
  tcp::endpoint ep{asio::ip::make_address(opts_.address), static_cast<unsigned short>(opts_.port)};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

http_server::~http_server() = default;

void http_server::run() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  std::vector<std::thread> extra;
  for (int i = 1; i < opts_.threads; ++i) extra.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : extra) t.join();
}

void http_server::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    // Idle connections wake from their read with an error and end; a request
    // being handled finishes and its connection ends after the response.
    std::lock_guard lk(live_->mu);
    for (auto* s : live_->streams) {
      s->socket().shutdown(tcp::socket::shutdown_receive, ec);
    }
  });
}

asio::awaitable<void> http_server::accept_loop() {
  while (!stopping_) {
    auto strand = asio::make_strand(ioc_);
    auto [ec, sock] = co_await acceptor_.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (stopping_) break;
      log_warn("accept failed", {{"error", ec.message()}});
      continue;
    }
    auto ex = sock.get_executor();
    asio::co_spawn(ex, session(std::move(sock)), asio::detached);
  }
}

namespace {
bool is_batch_target(const http::request<http::string_body>& req) {
  auto target = req.target();
  return req.method() == http::verb::post && target.substr(0, target.find('?')) == "/v1/jobs/batch";
}
}  // namespace

asio::awaitable<void> http_server::session(tcp::socket s) {
  beast::tcp_stream stream(std::move(s));
  stream.socket().set_option(tcp::no_delay(true));
  struct guard {
    http_server& srv;
    beast::tcp_stream* st;
    guard(http_server& s, beast::tcp_stream* t) : srv(s), st(t) {
      ++srv.connections_;
      std::lock_guard lk(srv.live_->mu);
      srv.live_->streams.insert(st);
    }
    ~guard() {
      --srv.connections_;
      std::lock_guard lk(srv.live_->mu);
      srv.live_->streams.erase(st);
    }
  } g(*this, &stream);

  beast::flat_buffer buffer;
  auto send = [&](http_response& res) -> asio::awaitable<bool> {
    bool keep = res.keep_alive() && !stopping_;
    res.keep_alive(keep);
    stream.expires_after(opts_.read_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    co_return !ec && keep;
  };

  if (connections_ > opts_.max_connections) {
    auto p = make_problem(503, "unavailable", "too many connections; retry later");
    auto res = router::problem_response(p, 11, false);
    co_await send(res);
  } else {
    for (;;) {
      http::request_parser<http::string_body> parser;
      // Beast checks Content-Length against the limit as the header ends,
      // before the route is known: the larger limit until then.
      parser.body_limit(std::max(opts_.body_limit, opts_.batch_body_limit));
      parser.header_limit(static_cast<std::uint32_t>(opts_.header_limit));
      stream.expires_after(opts_.read_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
      std::size_t limit = opts_.body_limit;
      if (!ec) {
        // A batch carries many jobs: its own, larger limit.
        if (is_batch_target(parser.get())) limit = opts_.batch_body_limit;
        parser.body_limit(limit);
        if (parser.content_length().value_or(0) > limit) {
          ec = http::error::body_limit;
        } else {
          std::tie(ec, n) = co_await http::async_read(stream, buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
        }
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted)
        break;
      if (ec) {
        problem p =
            ec == http::error::body_limit
                ? make_problem(413, "body_too_large", fmt::format("the limit is {} bytes", limit))
            : ec == http::error::header_limit
                ? make_problem(431, "header_too_large", "request headers are too large")
                : make_problem(400, "bad_request", ec.message());
        auto res = router::problem_response(p, parser.get().version() ? parser.get().version() : 11,
                                            false);
        co_await send(res);
        break;
      }
      stream.expires_never();
      auto req = parser.release();
      auto res = co_await router_.handle(req);
      if (!co_await send(res)) break;
    }
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace jobs
