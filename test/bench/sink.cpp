#include "sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace jobs::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct delivery_sink::impl {
  std::chrono::milliseconds delay;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  int port = 0;
  std::atomic<long> answered{0}, accepted{0};
  mutable std::mutex mu;
  std::unordered_set<std::string> seen;
  std::thread io;

  explicit impl(std::chrono::milliseconds d) : delay(d) {}

  asio::awaitable<void> session(tcp::socket sock) {
    sock.set_option(tcp::no_delay(true));
    beast::flat_buffer buf;
    asio::steady_timer timer(ioc);
    for (;;) {
      http::request<http::string_body> req;
      error_code ec;
      co_await http::async_read(sock, buf, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      if (delay.count() > 0) {
        timer.expires_after(delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      {
        std::lock_guard lk(mu);
        seen.emplace(req["webhook-id"]);
      }
      ++answered;
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.keep_alive(req.keep_alive());
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"ok":true})";
      res.prepare_payload();
      co_await http::async_write(sock, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !req.keep_alive()) break;
    }
    error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> accept() {
    for (;;) {
      error_code ec;
      auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(ioc, session(std::move(sock)), asio::detached);
    }
  }
};

delivery_sink::delivery_sink(std::chrono::milliseconds delay)
    : impl_(std::make_unique<impl>(delay)) {
  impl_->acceptor.listen(1024);
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->accept(), asio::detached);
  impl_->io = std::thread([this] { impl_->ioc.run(); });
}

delivery_sink::~delivery_sink() {
  impl_->ioc.stop();
  impl_->io.join();
}

int delivery_sink::port() const { return impl_->port; }

long delivery_sink::deliveries() const { return impl_->answered; }

long delivery_sink::connections() const { return impl_->accepted; }

std::unordered_set<std::string> delivery_sink::ids() const {
  std::lock_guard lk(impl_->mu);
  return impl_->seen;
}

}  // namespace jobs::bench
