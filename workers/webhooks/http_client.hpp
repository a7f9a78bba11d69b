#pragma once
// The webhook worker's HTTP/1.1 client: Boost.Beast on one Asio io_context,
// many requests in flight at once without a thread each.
//
// - Destinations are checked before any connection (address.hpp): the host
//   is resolved once (or read as an address, inet_aton spellings included),
//   every address is checked, and the socket connects only to the addresses
//   that passed. No second lookup, so DNS rebinding cannot redirect it.
// - https: certificate and host name verification always on (the system's
//   CAs, plus `ca_file`), SNI, TLS 1.2 at least.
// - Keep-alive connections are pooled per origin (at most `idle_per_origin`
//   idle ones, each for at most `idle_timeout`, expired ones closed every
//   few seconds); a pooled connection found closed by its server is not
//   reused, and one that turns out closed when written to is replaced once
//   by a fresh one.
// - Deadlines: `connect_timeout` for resolving, connecting and the TLS
//   handshake; the request's `timeout` for everything. The response body is
//   read up to `response_limit`; the first `stored_body` bytes are kept, to
//   the last whole UTF-8 character when the body is longer.
// - Redirects are never followed.
// - `stop` (a job's stop flag) is polled every 50 ms; when set, the
//   request's socket is closed and send() returns `cancelled`.
//
// Thread-safety: construct anywhere; send() only on the io_context's thread
// (one thread runs it).

#include "workers/webhooks/address.hpp"
#include "workers/webhooks/payload.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>

namespace jobs::webhooks {

struct client_options {
  allow_list allow;
  std::string ca_file;  ///< extra trusted CAs (PEM); empty: the system's only
  std::chrono::milliseconds connect_timeout{5000};
  std::size_t response_limit = 64 << 10;
  std::size_t stored_body = 4096;
  int idle_per_origin = 16;
  std::chrono::seconds idle_timeout{30};
};

struct outgoing {
  target_url url;
  bool put = false;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{15000};
};

struct http_result {
  enum class failure { none, refused, resolve, connect, tls, timeout, io, cancelled };
  failure fail = failure::none;
  std::string error;  ///< what went wrong, for the job's error
  int status = 0;     ///< when fail == none
  std::string retry_after;
  std::string body;  ///< the first stored_body bytes (whole characters)
  std::chrono::milliseconds latency{};
};

class http_client {
 public:
  /// Throws std::runtime_error when `ca_file` cannot be loaded.
  http_client(boost::asio::io_context& ioc, client_options o);
  ~http_client();

  boost::asio::awaitable<http_result> send(const outgoing& req, const std::atomic<bool>* stop);

  /// Why `host` is refused before any lookup (an address literal outside
  /// the allow list), or nullopt. Thread-safe: the options never change.
  std::optional<std::string> refuses_literal(std::string_view host) const;

 private:
  struct connection;
  struct watch;
  boost::asio::awaitable<std::unique_ptr<connection>> open(
      const outgoing& req, std::chrono::steady_clock::time_point end, std::shared_ptr<watch> w,
      http_result& out);
  boost::asio::awaitable<void> watchdog(std::shared_ptr<watch> w);
  std::unique_ptr<connection> take_idle(const std::string& origin);
  void put_idle(const std::string& origin, std::unique_ptr<connection> c);

  boost::asio::io_context& ioc_;
  client_options opts_;
  boost::asio::ssl::context tls_;
  std::map<std::string, std::deque<std::unique_ptr<connection>>> idle_;
  std::chrono::steady_clock::time_point last_sweep_{};
};

}  // namespace jobs::webhooks
