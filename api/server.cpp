#include "api/server.hpp"

#include "common/listen.hpp"
#include "common/log.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace jobs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct http_server::registry {
  std::mutex mu;
  std::set<beast::tcp_stream*> streams;
  std::map<std::string, int> per_ip;
};

namespace {

std::unique_ptr<ssl::context> server_tls(const server_options& o) {
  if (o.tls_cert_file.empty()) return nullptr;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) throw std::runtime_error("TLS certificate " + o.tls_cert_file + ": " + ec.message());
  ctx->use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS key " + o.tls_key_file + ": " + ec.message());
  return ctx;
}

}  // namespace

void check_server_tls(const std::string& cert_file, const std::string& key_file) {
  server_options o;
  o.tls_cert_file = cert_file;
  o.tls_key_file = key_file;
  server_tls(o);
}

namespace {

// One context per serving thread: concurrency hint 1 each.
std::vector<std::unique_ptr<asio::io_context>> make_contexts(int threads) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  for (int i = 0; i < std::max(threads, 1); ++i)
    out.push_back(std::make_unique<asio::io_context>(1));
  return out;
}

bool is_batch_target(const http::request_header<>& req) {
  auto target = req.target();
  return req.method() == http::verb::post && target.substr(0, target.find('?')) == "/v1/jobs/batch";
}

bool is_closed(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == beast::error::timeout || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated;
}

// A read deadline that cancels the socket's reads but leaves it open, so the
// server can still answer 408. A generation number discards a timer that
// fired just as its read completed.
class read_deadline {
 public:
  read_deadline(beast::tcp_stream& s) : stream_(s), timer_(s.get_executor()) {}
  void arm(std::chrono::milliseconds d) {
    auto gen = ++generation_;
    expired_ = false;
    timer_.expires_after(d);
    timer_.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation_) return;
      expired_ = true;
      stream_.socket().cancel(ec);
    });
  }
  void disarm() {
    ++generation_;
    timer_.cancel();
  }
  bool expired() const { return expired_; }

 private:
  beast::tcp_stream& stream_;
  asio::steady_timer timer_;
  std::uint64_t generation_ = 0;
  bool expired_ = false;
};

// A request's share of the bytes of request bodies all connections may hold
// at once (server_options::body_budget), and of its tenant's part of them,
// given back when it ends.
class body_share {
 public:
  body_share(http_server::body_ledger& ledger, std::size_t budget, std::size_t per_tenant)
      : ledger_(ledger), budget_(budget), per_tenant_(per_tenant) {}
  ~body_share() {
    if (mine_ == 0) return;
    std::lock_guard lk(ledger_.mu);
    ledger_.total -= mine_;
    if (auto it = ledger_.tenants.find(tenant_);
        it != ledger_.tenants.end() && (it->second -= mine_) == 0)
      ledger_.tenants.erase(it);
  }
  body_share(const body_share&) = delete;
  body_share& operator=(const body_share&) = delete;

  // Holds `n` bytes in all for `tenant` (more than now, or nothing
  // changes); false when the budget, or the tenant's part, has not that
  // many left.
  bool grow_to(std::size_t n, const std::string& tenant) {
    if (n <= mine_) return true;
    std::size_t more = n - mine_;
    std::lock_guard lk(ledger_.mu);
    auto& theirs = ledger_.tenants[tenant];
    if (ledger_.total + more > budget_ || theirs + more > per_tenant_) {
      if (theirs == 0) ledger_.tenants.erase(tenant);
      return false;
    }
    ledger_.total += more;
    theirs += more;
    tenant_ = tenant;
    mine_ = n;
    return true;
  }

 private:
  http_server::body_ledger& ledger_;
  std::size_t budget_, per_tenant_;
  std::string tenant_;
  std::size_t mine_ = 0;
};

// A chunked body is held as it arrives, this much ahead of what came.
constexpr std::size_t chunked_step = 64 << 10;

problem bodies_over_budget() {
  static log_sampler sampled(std::chrono::seconds(10));
  sampled.write(log_level::warn,
                "request bodies over JOBS_HTTP_BODY_BUDGET, or a tenant's part of it: refused");
  auto p = make_problem(503, "unavailable",
                        "the server holds as many request bodies as it may at once, or as many "
                        "of this tenant's (JOBS_HTTP_BODY_BUDGET); retry later");
  p.retry_after_s = 1;
  return p;
}

}  // namespace

http_server::http_server(server_options o, router& r)
    : opts_(std::move(o)),
      router_(r),
      iocs_(make_contexts(opts_.threads)),
      acceptor_(*iocs_[0]),
      tls_(server_tls(opts_)),
      live_(std::make_unique<registry>()) {
  listen_on(acceptor_, opts_.address, opts_.port);
  port_ = acceptor_.local_endpoint().port();
}

http_server::~http_server() = default;

void http_server::run() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  // The other contexts have no work until a connection is dealt to them.
  for (std::size_t i = 1; i < iocs_.size(); ++i)
    idle_.push_back(asio::make_work_guard(iocs_[i]->get_executor()));
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < iocs_.size(); ++i)
    extra.emplace_back([io = iocs_[i].get()] { io->run(); });
  iocs_[0]->run();
  for (auto& t : extra) t.join();
}

void http_server::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& g : idle_) g.reset();  // each context returns once its connections end
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
    auto strand = asio::make_strand(*iocs_[next_ioc_++ % iocs_.size()]);
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

asio::awaitable<void> http_server::session(tcp::socket s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
  if (tls_) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(s), *tls_);
    co_await serve(stream);
  } else {
    beast::tcp_stream stream(std::move(s));
    co_await serve(stream);
  }
}

template <class Stream>
asio::awaitable<void> http_server::serve(Stream& stream) {
  constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;
  auto& tcp_stream = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  auto peer = tcp_stream.socket().remote_endpoint(ec).address().to_string();
  struct guard {
    http_server& srv;
    beast::tcp_stream* st;
    std::string ip;
    int from_ip = 0;
    guard(http_server& s, beast::tcp_stream* t, std::string a) : srv(s), st(t), ip(std::move(a)) {
      ++srv.connections_;
      std::lock_guard lk(srv.live_->mu);
      srv.live_->streams.insert(st);
      from_ip = ++srv.live_->per_ip[ip];
    }
    ~guard() {
      --srv.connections_;
      std::lock_guard lk(srv.live_->mu);
      srv.live_->streams.erase(st);
      if (--srv.live_->per_ip[ip] == 0) srv.live_->per_ip.erase(ip);
    }
  } g(*this, &tcp_stream, peer);

  read_deadline deadline(tcp_stream);
  auto send = [&](http_response& res, bool head = false) -> asio::awaitable<bool> {
    if (head) router::head_only(res);
    bool keep = res.keep_alive() && !stopping_;
    res.keep_alive(keep);
    tcp_stream.expires_after(opts_.read_timeout);
    auto [wec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    tcp_stream.expires_never();
    co_return !wec && keep;
  };
  bool refused_some = false;
  auto refuse = [&](const problem& p, unsigned version,
                    bool head = false) -> asio::awaitable<void> {
    refused_some = true;
    auto res = router::problem_response(p, version ? version : 11, false);
    co_await send(res, head);
  };

  bool open = true;
  if constexpr (is_tls) {
    deadline.arm(opts_.header_timeout);
    std::tie(ec) = co_await stream.async_handshake(ssl::stream_base::server,
                                                   asio::as_tuple(asio::use_awaitable));
    deadline.disarm();
    open = !ec;
  }

  // Bounded: a head over header_limit is refused before it fills the buffer,
  // and a body passes through it; only a chunk's size line could grow it,
  // without end (its extensions are not counted against the body limit).
  beast::flat_buffer buffer(opts_.header_limit + (64u << 10));
  if (!open) {
  } else if (connections_ > opts_.max_connections) {
    co_await refuse(make_problem(503, "unavailable", "too many connections; retry later"), 11);
  } else if (g.from_ip > opts_.max_connections_per_ip) {
    auto p = make_problem(
        429, "too_many_connections",
        fmt::format("at most {} connections from one address", opts_.max_connections_per_ip));
    p.retry_after_s = 1;
    co_await refuse(p, 11);
  } else {
    for (;;) {
      std::size_t n = 0;
      if (buffer.size() == 0) {
        // Idle until the next request's first byte; then its deadlines run.
        deadline.arm(opts_.idle_timeout);
        std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(4096),
                                                          asio::as_tuple(asio::use_awaitable));
        buffer.commit(n);
        if (ec) break;
      }
      body_share share(bodies_, opts_.body_budget, tenant_body_budget());  // outlives the request
      http::request_parser<http::string_body> parser;
      // Beast checks Content-Length against the limit as the header ends,
      // before the route is known: the larger limit until then.
      parser.body_limit(std::max(opts_.body_limit, opts_.batch_body_limit));
      parser.header_limit(static_cast<std::uint32_t>(opts_.header_limit));
      deadline.arm(opts_.header_timeout);
      std::tie(ec, n) = co_await http::async_read_header(stream, buffer, parser,
                                                         asio::as_tuple(asio::use_awaitable));
      // A batch carries many jobs: its own, larger limit. The request line is
      // known when Beast refuses a Content-Length field, and the refusal names it.
      std::size_t limit = is_batch_target(parser.get()) ? opts_.batch_body_limit : opts_.body_limit;
      std::optional<problem> refused;
      router::head_check checked;
      if (!ec) {
        parser.body_limit(limit);
        refused = check_request_head(parser.get(), opts_.head);
        if (!refused && parser.content_length().value_or(0) > limit) {
          ec = http::error::body_limit;
        } else if (!refused) {
          // Before a body is read, the router's checks from the head: the
          // route and the key (a lookup with its own deadline, so no read
          // deadline runs meanwhile). A refusal is the answer and the body
          // is never read, so that a client without a key cannot make the
          // server hold bodies. A client that sent `Expect: 100-continue`
          // waits for the go-ahead before its body (curl does, about 1 s,
          // for bodies over 1 MiB).
          bool has_body = !parser.is_done();
          if (has_body) {
            deadline.disarm();
            checked = co_await router_.check_head(parser.get());
          }
          // Then the bytes it will hold, from the body budget: a
          // Content-Length's all at once (Beast reserves them), a chunked
          // body's as it arrives. Past the budget: 503, its body unread.
          std::string tenant = checked.who ? checked.who->tenant.value : std::string();
          if (has_body && !checked.refusal &&
              !share.grow_to(parser.content_length().value_or(std::min(limit, chunked_step)),
                             tenant))
            refused = bodies_over_budget();
          deadline.arm(opts_.read_timeout);
          if (has_body && !checked.refusal && !refused && wants_continue(parser.get())) {
            http::response<http::empty_body> res{http::status::continue_, 11};
            std::tie(ec, n) =
                co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
          }
          if (!ec && !checked.refusal && !refused) {
            auto head_fields = std::distance(parser.get().begin(), parser.get().end());
            if (parser.chunked()) {
              // All that is buffered at each step, as async_read would (not
              // one chunk a step); the string's capacity is what it holds
              // (it doubles as it grows).
              parser.eager(true);
              while (!ec && !parser.is_done()) {
                std::tie(ec, n) = co_await http::async_read_some(
                    stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
                const auto& body = parser.get().body();
                if (!ec && !parser.is_done() &&
                    !share.grow_to(
                        std::max(body.capacity(), std::min(limit, body.size() + chunked_step)),
                        tenant)) {
                  refused = bodies_over_budget();
                  break;
                }
              }
            } else {
              std::tie(ec, n) = co_await http::async_read(stream, buffer, parser,
                                                          asio::as_tuple(asio::use_awaitable));
            }
            // Beast adds a chunked body's trailer fields to the head, after
            // it was checked (a second Authorization, an Idempotency-Key,
            // fields past the limit): none is taken.
            if (!ec && !refused &&
                std::distance(parser.get().begin(), parser.get().end()) != head_fields)
              refused =
                  make_problem(400, "bad_request",
                               "trailer fields are not accepted: send every field in the head");
          }
        }
      }
      bool late = deadline.expired();
      deadline.disarm();
      auto version = parser.get().version();
      bool head = parser.get().method() == http::verb::head;  // once its request line is read
      if (late) {
        co_await refuse(make_problem(408, "request_timeout",
                                     "the request did not arrive within the server's deadline"),
                        version, head);
        break;
      }
      if (refused) {
        co_await refuse(*refused, version, head);
        break;
      }
      if (checked.refusal) {
        // Its body was never asked for: close rather than read it.
        refused_some = true;
        checked.refusal->keep_alive(false);
        co_await send(*checked.refusal);
        break;
      }
      if (is_closed(ec)) break;
      if (ec) {
        co_await refuse(read_problem(ec, limit), version, head);
        break;
      }
      auto req = parser.release();
      auto res = co_await router_.handle(req, router_.still_valid(checked));
      if (!co_await send(res)) break;
    }
  }
  deadline.disarm();
  if constexpr (is_tls) {
    if (open) {
      tcp_stream.expires_after(std::chrono::seconds(1));
      std::tie(ec) = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    }
  }
  tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if constexpr (!is_tls) {
    // A refused client may still be sending: read on (bounded) until it stops,
    // so the kernel does not reset the connection before it reads the answer.
    if (refused_some) {
      deadline.arm(std::chrono::seconds(1));
      std::array<char, 16384> sink;
      for (std::size_t drained = 0; drained < (16u << 20);) {
        auto [rec, n] = co_await tcp_stream.async_read_some(asio::buffer(sink),
                                                            asio::as_tuple(asio::use_awaitable));
        if (rec) break;
        drained += n;
      }
      deadline.disarm();
    }
  }
}

}  // namespace jobs
