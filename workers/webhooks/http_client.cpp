#include "workers/webhooks/http_client.hpp"

#include "common/text.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>

namespace jobs::webhooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {
constexpr auto watch_interval = std::chrono::milliseconds(50);
constexpr auto sweep_interval = std::chrono::seconds(5);
constexpr std::size_t header_limit = 16 << 10;
constexpr std::size_t read_slack = 64 << 10;
constexpr const char* user_agent = "jobs-webhooks/0.1";

std::chrono::milliseconds ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t);
}
}  // namespace

struct http_client::connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  // Bounded: a head past header_limit is refused before it fills it, and a
  // body passes through it; only a chunk's size line could grow it without
  // end (a receiver streaming one extension: gigabytes in seconds).
  beast::flat_buffer buffer{header_limit + read_slack};
  steady::time_point idle_since{};
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// What the watchdog may cancel for one request, and why it did.
struct http_client::watch {
  explicit watch(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  const std::atomic<bool>* stop = nullptr;
  steady::time_point resolve_until{};
  tcp::resolver* resolver = nullptr;
  beast::tcp_stream* stream = nullptr;
  bool finished = false;
  bool stopped = false;
};

http_client::http_client(asio::io_context& ioc, client_options o)
    : ioc_(ioc), opts_(std::move(o)), tls_(asio::ssl::context::tls_client) {
  tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  tls_.set_default_verify_paths();
  if (!opts_.ca_file.empty()) {
    error_code ec;
    tls_.load_verify_file(opts_.ca_file, ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("cannot load CA file {}: {}", opts_.ca_file, ec.message()));
  }
  tls_.set_verify_mode(asio::ssl::verify_peer);
}

http_client::~http_client() = default;

asio::awaitable<void> http_client::watchdog(std::shared_ptr<watch> w) {
  while (!w->finished) {
    w->timer.expires_after(watch_interval);
    error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->finished) break;
    bool stop = w->stop && w->stop->load(std::memory_order_relaxed);
    if (stop) w->stopped = true;
    // The resolver has no deadline of its own.
    if (w->resolver && (stop || steady::now() >= w->resolve_until)) w->resolver->cancel();
    if (stop && w->stream) w->stream->socket().close(ec);
  }
}

namespace {
// An idle connection the server has closed (or, without TLS, sent stray
// bytes on) is no use: peek without blocking. TLS 1.3 session tickets may
// legitimately wait unread on a TLS connection.
bool unusable(beast::tcp_stream& s, bool tls) {
  char b;
  auto n = ::recv(s.socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  return !tls;
}
}  // namespace

std::unique_ptr<http_client::connection> http_client::take_idle(const std::string& origin) {
  auto it = idle_.find(origin);
  if (it == idle_.end()) return nullptr;
  auto& q = it->second;
  while (!q.empty()) {
    auto c = std::move(q.back());
    q.pop_back();
    if (steady::now() - c->idle_since < opts_.idle_timeout &&
        !unusable(c->tcp(), c->tls != nullptr))
      return c;
  }
  idle_.erase(it);
  return nullptr;
}

void http_client::put_idle(const std::string& origin, std::unique_ptr<connection> c) {
  // Now and then, close what expired everywhere, so origins never asked
  // again do not keep their sockets.
  auto now = steady::now();
  if (now - last_sweep_ > sweep_interval) {
    last_sweep_ = now;
    for (auto it = idle_.begin(); it != idle_.end();) {
      std::erase_if(it->second, [&](const std::unique_ptr<connection>& idle) {
        return now - idle->idle_since >= opts_.idle_timeout;
      });
      it = it->second.empty() ? idle_.erase(it) : std::next(it);
    }
  }
  auto& q = idle_[origin];
  if (static_cast<int>(q.size()) >= opts_.idle_per_origin) return;  // closed on destruction
  c->idle_since = steady::now();
  c->tcp().expires_never();
  q.push_back(std::move(c));
}

asio::awaitable<std::unique_ptr<http_client::connection>> http_client::open(
    const outgoing& req, steady::time_point end, std::shared_ptr<watch> w, http_result& out) {
  using failure = http_result::failure;
  const auto& host = req.url.host;
  auto connect_end = std::min(end, steady::now() + opts_.connect_timeout);
  std::vector<asio::ip::address> found;
  if (auto a = literal_address(host)) {
    found.push_back(*a);
  } else {
    tcp::resolver r(ioc_);
    w->resolver = &r;
    w->resolve_until = connect_end;
    error_code ec;
    auto results = co_await r.async_resolve(host, std::to_string(req.url.port),
                                            asio::redirect_error(asio::use_awaitable, ec));
    w->resolver = nullptr;
    if (ec) {
      out.fail = w->stopped                     ? failure::cancelled
                 : steady::now() >= connect_end ? failure::timeout
                                                : failure::resolve;
      out.error = fmt::format("cannot resolve {}: {}", host, ec.message());
      co_return nullptr;
    }
    for (const auto& e : results) found.push_back(e.endpoint().address());
  }
  // Connect only to what passed the check: the same addresses, no second lookup.
  std::vector<tcp::endpoint> checked;
  std::string refused;
  for (const auto& a : found) {
    if (auto why = refuse(host, a, opts_.allow)) {
      if (refused.empty()) refused = *why;
    } else {
      checked.emplace_back(a, req.url.port);
    }
  }
  if (checked.empty()) {
    out.fail = failure::refused;
    out.error = refused.empty() ? "no address for " + host : refused;
    co_return nullptr;
  }
  auto c = std::make_unique<connection>();
  if (req.url.tls)
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, tls_);
  else
    c->plain = std::make_unique<beast::tcp_stream>(ioc_);
  c->tcp().expires_at(connect_end);
  w->stream = &c->tcp();
  error_code ec;
  co_await c->tcp().async_connect(checked, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.fail = w->stopped                    ? failure::cancelled
               : ec == beast::error::timeout ? failure::timeout
                                             : failure::connect;
    out.error = fmt::format("cannot connect to {}:{}: {}", host, req.url.port, ec.message());
    co_return nullptr;
  }
  if (c->tls) {
    auto* ssl = c->tls->native_handle();
    if (!literal_address(host)) SSL_set_tlsext_host_name(ssl, host.c_str());
    c->tls->set_verify_callback(asio::ssl::host_name_verification(host));
    co_await c->tls->async_handshake(asio::ssl::stream_base::client,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.fail = w->stopped                    ? failure::cancelled
                 : ec == beast::error::timeout ? failure::timeout
                                               : failure::tls;
      out.error = fmt::format("TLS handshake with {} failed: {}", host, ec.message());
      co_return nullptr;
    }
  }
  co_return c;
}

namespace {
template <class Stream>
asio::awaitable<error_code> exchange(Stream& s, beast::flat_buffer& buffer,
                                     http::request<http::string_body>& req,
                                     http::response_parser<http::string_body>& parser) {
  error_code ec;
  co_await http::async_write(s, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  co_await http::async_read(s, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

bool closed_by_peer(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}
}  // namespace

std::optional<std::string> http_client::refuses_literal(std::string_view host) const {
  auto a = literal_address(host);
  if (!a) return std::nullopt;
  return refuse(host, *a, opts_.allow);
}

asio::awaitable<http_result> http_client::send(const outgoing& req, const std::atomic<bool>* stop) {
  using failure = http_result::failure;
  // The URL's and the payload's checks let no control character through; a
  // request is never written with a line break in a header, whatever made
  // the job.
  bool clean = is_field_value(req.url.host) &&
               std::all_of(req.headers.begin(), req.headers.end(),
                           [](const auto& h) { return is_field_value(h.second); });
  if (!clean) {
    http_result refused;
    refused.fail = failure::refused;
    refused.error = "a header value or the host holds a control character";
    co_return refused;
  }
  auto start = steady::now();
  auto end = start + req.timeout;
  auto w = std::make_shared<watch>(ioc_);
  w->stop = stop;
  asio::co_spawn(ioc_, watchdog(w), asio::detached);
  http_result out;
  auto origin = req.url.origin();

  http::request<http::string_body> msg{req.put ? http::verb::put : http::verb::post, req.url.target,
                                       11};
  bool v6 = req.url.host.find(':') != std::string::npos;
  auto default_port = req.url.tls ? 443 : 80;
  msg.set(http::field::host,
          (v6 ? "[" + req.url.host + "]" : req.url.host) +
              (req.url.port == default_port ? std::string() : ":" + std::to_string(req.url.port)));
  msg.set(http::field::user_agent, user_agent);
  for (const auto& [k, v] : req.headers) msg.set(k, v);
  msg.set(http::field::content_type, "application/json");
  msg.body() = req.body;
  msg.keep_alive(true);
  msg.prepare_payload();

  for (int round = 0;; ++round) {
    auto c = round == 0 ? take_idle(origin) : nullptr;
    bool reused = c != nullptr;
    if (!c) c = co_await open(req, end, w, out);
    if (!c) break;
    w->stream = &c->tcp();
    c->tcp().expires_at(end);
    http::response_parser<http::string_body> parser;
    parser.body_limit(opts_.response_limit);
    parser.header_limit(header_limit);
    error_code ec = c->tls ? co_await exchange(*c->tls, c->buffer, msg, parser)
                           : co_await exchange(*c->plain, c->buffer, msg, parser);
    w->stream = nullptr;
    if (ec && reused && !parser.got_some() && closed_by_peer(ec) && !w->stopped) continue;
    bool truncated = ec == http::error::body_limit && parser.is_header_done();
    if (ec && !truncated) {
      out.fail = w->stopped                    ? failure::cancelled
                 : ec == beast::error::timeout ? failure::timeout
                                               : failure::io;
      out.error = out.fail == failure::timeout
                      ? fmt::format("timed out after {} ms", req.timeout.count())
                  : ec == http::error::buffer_overflow
                      ? fmt::format(
                            "request to {} failed: a chunk size line of its response "
                            "was longer than {} bytes",
                            origin, header_limit + read_slack)
                      : fmt::format("request to {} failed: {}", origin, ec.message());
      break;
    }
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    if (auto it = res.find(http::field::retry_after); it != res.end())
      out.retry_after = std::string(it->value());
    out.body = res.body().substr(0, opts_.stored_body);
    // Cut inside a character: whole characters only.
    if (res.body().size() > opts_.stored_body) out.body.resize(utf8_whole_prefix(out.body));
    if (!truncated && res.keep_alive() && !w->stopped) put_idle(origin, std::move(c));
    break;
  }
  if (out.fail == failure::timeout && out.error.find("timed out") == std::string::npos)
    out.error = fmt::format("timed out after {} ms ({})", req.timeout.count(), out.error);
  if (out.fail == failure::cancelled) out.error = "stopped by the worker (" + out.error + ")";
  out.latency = ms_since(start);
  w->finished = true;
  w->timer.cancel();
  co_return out;
}

}  // namespace jobs::webhooks
