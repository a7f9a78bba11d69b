#include "common/metrics_server.hpp"

#include "common/listen.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <thread>

namespace jobs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool metrics_token_ok(std::string_view authorization, std::string_view token) {
  if (token.empty()) return true;
  constexpr std::string_view scheme = "Bearer ";
  if (!authorization.starts_with(scheme)) return false;
  auto given = authorization.substr(scheme.size());
  if (given.size() != token.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ token[i]);
  return diff == 0;
}

struct metrics_server::impl {
  metrics_server_options opts;
  const metrics::registry& reg;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  impl(metrics_server_options o, const metrics::registry& r) : opts(std::move(o)), reg(r) {}

  http::response<http::string_body> answer(const http::request<http::empty_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (req.target() != "/metrics") {
      res.result(http::status::not_found);
      res.body() = "not found: try /metrics\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
    } else if (!metrics_token_ok(req[http::field::authorization], opts.token)) {
      res.result(http::status::unauthorized);
      res.set(http::field::www_authenticate, "Bearer");
    } else {
      res.set(http::field::content_type, metrics::content_type);
      res.body() = reg.render();
    }
    res.prepare_payload();
    return res;
  }

  asio::awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    // Bounded, and no body is ever read: a scrape has none (a chunked one
    // that never ended once grew the buffer without limit).
    beast::flat_buffer buf(16 << 10);
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(8 << 10);
      stream.expires_after(opts.read_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buf, parser,
                                                      asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      if (!parser.is_done()) {
        http::response<http::string_body> refused{http::status::bad_request,
                                                  parser.get().version()};
        refused.set(http::field::content_type, "text/plain");
        refused.body() = "a request to this listener carries no body\n";
        refused.keep_alive(false);
        refused.prepare_payload();
        co_await http::async_write(stream, refused, asio::as_tuple(asio::use_awaitable));
        break;
      }
      auto res = answer(parser.get());
      bool keep = res.keep_alive();
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      asio::co_spawn(ioc, session(std::move(sock)), asio::detached);
    }
  }
};

metrics_server::metrics_server(metrics_server_options o, const metrics::registry& reg)
    : impl_(std::make_unique<impl>(std::move(o), reg)) {
  auto& a = impl_->acceptor;
  listen_on(a, impl_->opts.address, impl_->opts.port);
  port_ = a.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  log_info("metrics listening", {{"address", impl_->opts.address}, {"port", port_}});
}

metrics_server::~metrics_server() { stop(); }

void metrics_server::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->ioc.stop();  // sessions in progress are abandoned: a scrape is retried
  impl_->thread.join();
}

}  // namespace jobs
