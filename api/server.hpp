#pragma once
// The HTTP/1.1 server (Boost.Beast, C++20 coroutines) in front of the router,
// in clear or, with a certificate and key, over TLS (HTTPS).
//
// Per connection: keep-alive. Deadlines, so a slow client holds nothing for
// long: a connection waiting for a request's first byte is closed after
// `idle_timeout`; the headers must then arrive within `header_timeout`, the
// body within `read_timeout` of the headers' end, else 408 request_timeout and
// the connection closes. Limits (api/http_limits.hpp): bodies over
// `body_limit` get 413, header blocks over `header_limit` or with more than
// `max_headers` fields 431, targets over `url_limit` 414, an Expect other
// than 100-continue 417; then the connection closes. At most
// `max_connections` are served at once (past that 503 unavailable) and
// `max_connections_per_ip` from one client address (past that 429
// too_many_connections); either way the connection then closes. The bodies
// being read and handled hold at most `body_budget` bytes together, and one
// tenant's a quarter of it: a body that would pass either gets 503
// unavailable instead (Retry-After: 1), and the connection closes.
// A request's body is read only once router::check_head() has passed its
// head (the route, the key); its refusal is the answer instead, and the
// connection closes. A request with `Expect: 100-continue` is asked for its
// body (`100 Continue`) then. A Transfer-Encoding other than chunked is
// refused (400, or 501 for codings before chunked), and the read buffer is
// bounded (a chunk's size line over it: 400).
// After a refusal the server reads on for up to a second (lingering close),
// so a client still sending its body reads the answer rather than a reset.
//
// stop() closes the listener, lets requests in flight finish, and returns
// once every connection is done (idle keep-alive connections are closed).
//
// Throws std::runtime_error from the constructor when the TLS files cannot be
// loaded. Thread-safety: run() serves on `threads` threads, each running an
// io_context of its own (connections are dealt to them in turn, so no two
// threads contend for one context's locks); stop() from any thread.

#include "api/http_limits.hpp"
#include "api/router.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace jobs {

struct server_options {
  std::string address = "127.0.0.1";
  int port = 8780;  ///< 0: any free port (see port())
  int threads = 2;
  std::size_t body_limit = 1 << 20;
  std::size_t batch_body_limit = 16 << 20;  ///< for POST /v1/jobs/batch
  std::size_t header_limit = 16 << 10;
  /// Bytes of request bodies all connections may hold at once, a quarter of
  /// them (or the larger body limit) one tenant's; past it 503 unavailable.
  /// At least the larger body limit.
  std::size_t body_budget = 256 << 20;
  head_limits head;
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds read_timeout{30000};  ///< the body; also each response's write
  int max_connections = 4096;
  int max_connections_per_ip = 256;
  std::string tls_cert_file;  ///< PEM chain; with tls_key_file: HTTPS only
  std::string tls_key_file;
};

/// Loads the certificate chain and the key as the server does (the key must
/// match the certificate); throws std::runtime_error naming the file that
/// failed. For check-config.
void check_server_tls(const std::string& cert_file, const std::string& key_file);

class http_server {
 public:
  http_server(server_options o, router& r);
  ~http_server();
  /// The bound port (after construction).
  int port() const { return port_; }
  /// Serves until stop(); blocks.
  void run();
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket s);
  template <class Stream>
  boost::asio::awaitable<void> serve(Stream& stream);

  server_options opts_;
  router& router_;
  std::vector<std::unique_ptr<boost::asio::io_context>> iocs_;  ///< [0] also accepts
  std::size_t next_ioc_ = 0;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> idle_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // null: plain HTTP
  int port_ = 0;
  std::atomic<int> connections_{0};

 public:
  /// The request bodies held now: in all, and per tenant (of the key).
  struct body_ledger {
    std::mutex mu;
    std::size_t total = 0;
    std::map<std::string, std::size_t, std::less<>> tenants;
  };

 private:
  body_ledger bodies_;
  /// A tenant's part of the budget: a quarter, or the largest body.
  std::size_t tenant_body_budget() const {
    return std::max(opts_.body_budget / 4, std::max(opts_.body_limit, opts_.batch_body_limit));
  }
  std::atomic<bool> stopping_{false};
  struct registry;
  std::unique_ptr<registry> live_;  // open sockets, closed on stop; connections per address
};

}  // namespace jobs
