#include "support/webhook_sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <thread>

namespace jobs::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct webhook_sink::impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::unique_ptr<asio::ssl::context> tls;
  mutable std::mutex mu;
  std::vector<sink_request> seen;
  std::map<std::string, int> per_path;  // requests so far, by target
  std::atomic<long> accepted{0};
  std::atomic<int> in_flight{0}, peak{0};
  std::atomic<bool> down{false};
  std::thread io;

  // Path segment i of "/a/b/c" (0: "a"), or "".
  static std::string segment(const std::string& target, int i) {
    std::size_t pos = 1;
    for (int k = 0; k < i; ++k) {
      pos = target.find('/', pos);
      if (pos == std::string::npos) return "";
      ++pos;
    }
    return target.substr(pos, target.find_first_of("/?", pos) - pos);
  }

  // The answer to a request; nullopt: close without one.
  asio::awaitable<std::optional<http::response<http::string_body>>> answer(
      const http::request<http::string_body>& req) {
    std::string target(req.target());
    sink_request r{std::string(req.method_string()), target, req.body(), {}, {}};
    r.at = std::chrono::steady_clock::now();
    for (const auto& f : req) {
      std::string n(f.name_string());
      for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[n] = std::string(f.value());
    }
    int nth;
    {
      std::lock_guard lk(mu);
      seen.push_back(r);
      nth = ++per_path[target];
    }
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.body() = R"({"ok":true})";
    auto kind = segment(target, 0);
    auto arg = segment(target, 1);
    if (kind == "status") {
      res.result(std::stoi(arg));
      res.body() = "status " + arg;
    } else if (kind == "html") {
      res.result(std::stoi(arg));
      res.set(http::field::content_type, "text/html");
      res.body() = "<!DOCTYPE html>\r\n<html>\r\n<head><title>" + arg +
                   " Bad Gateway</title></head>\r\n<body>\r\n";
      for (int i = 0; i < 40; ++i)
        res.body() +=
            "\t<p>The upstream server did not answer (line " + std::to_string(i) + ").</p>\r\n";
      res.body() += "</body>\r\n</html>\r\n";
    } else if (kind == "bytes") {
      // A NUL, a malformed byte, then 1,400 euro signs (3 bytes each).
      res.body() = std::string("a\0b", 3) + '\xFF' + 'c';
      for (int i = 0; i < 1400; ++i) res.body() += "\xE2\x82\xAC";
    } else if (kind == "nul") {
      res.body() = std::string("ok\r\n\0\xFF\xFEline2", 12);
    } else if (kind == "fail" && nth <= std::stoi(arg)) {
      res.result(http::status::internal_server_error);
      res.body() = "failing " + std::to_string(nth);
    } else if (kind == "down" && down) {
      res.result(http::status::service_unavailable);
      res.body() = "down";
    } else if (kind == "retry-after" && nth == 1) {
      res.result(http::status::too_many_requests);
      res.set(http::field::retry_after, arg);
    } else if (kind == "slow") {
      asio::steady_timer t(ioc, std::chrono::milliseconds(std::stoi(arg)));
      error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    } else if (kind == "redirect") {
      res.result(http::status::moved_permanently);
      res.set(http::field::location, "/ok/redirected");
    } else if (kind == "close") {
      co_return std::nullopt;
    }
    res.prepare_payload();
    co_return res;
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& s) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      error_code ec;
      co_await http::async_read(s, buf, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      if (segment(std::string(req.target()), 0) == "chunk-ext") {
        // A chunked answer whose first chunk's size line never ends: one
        // extension of N KiB, then the connection closes.
        {
          std::lock_guard lk(mu);
          seen.push_back({std::string(req.method_string()),
                          std::string(req.target()),
                          req.body(),
                          {},
                          std::chrono::steady_clock::now()});
        }
        std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;";
        co_await asio::async_write(s, asio::buffer(head),
                                   asio::redirect_error(asio::use_awaitable, ec));
        const std::string kib(1024, 'a');
        for (int i = std::stoi(segment(std::string(req.target()), 1)); i > 0 && !ec; --i)
          co_await asio::async_write(s, asio::buffer(kib),
                                     asio::redirect_error(asio::use_awaitable, ec));
        co_return;
      }
      int now = ++in_flight;
      for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
      }
      auto res = co_await answer(req);
      if (res) co_await http::async_write(s, *res, asio::redirect_error(asio::use_awaitable, ec));
      --in_flight;
      if (!res || ec || !req.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    if (!tls) {
      beast::tcp_stream s(std::move(sock));
      co_await serve(s);
      error_code ec;
      s.socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> s(std::move(sock), *tls);
    error_code ec;
    co_await s.async_handshake(asio::ssl::stream_base::server,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await serve(s);
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

webhook_sink::webhook_sink(const std::string& cert_file, const std::string& key_file)
    : impl_(std::make_unique<impl>()) {
  if (!cert_file.empty()) {
    impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(cert_file);
    impl_->tls->use_private_key_file(key_file, asio::ssl::context::pem);
  }
  impl_->acceptor.listen(1024);
  asio::co_spawn(impl_->ioc, impl_->accept(), asio::detached);
  impl_->io = std::thread([this] { impl_->ioc.run(); });
}

webhook_sink::~webhook_sink() {
  impl_->ioc.stop();
  impl_->io.join();
}

int webhook_sink::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string webhook_sink::base() const {
  return std::string(impl_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
}

std::vector<sink_request> webhook_sink::requests() const {
  std::lock_guard lk(impl_->mu);
  return impl_->seen;
}

std::vector<sink_request> webhook_sink::requests(const std::string& prefix) const {
  std::vector<sink_request> out;
  std::lock_guard lk(impl_->mu);
  for (const auto& r : impl_->seen)
    if (r.target.starts_with(prefix)) out.push_back(r);
  return out;
}

std::size_t webhook_sink::count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->seen.size();
}

long webhook_sink::connections() const { return impl_->accepted; }

int webhook_sink::peak_in_flight() const { return impl_->peak; }

void webhook_sink::set_down(bool down) { impl_->down = down; }

}  // namespace jobs::test
