#pragma once
// The HTTP/1.1 server (Boost.Beast, C++20 coroutines) in front of the router.
//
// Per connection: keep-alive; each request must arrive whole within
// `read_timeout` (headers and body: a slow client holds nothing for long);
// bodies over `body_limit` get 413, headers over `header_limit` get 431, then
// the connection closes. At most `max_connections` are served at once; past
// that a new connection gets 503 and is closed.
//
// stop() closes the listener, lets requests in flight finish, and returns
// once every connection is done (idle keep-alive connections are closed).
//
// Thread-safety: run() on `threads` threads of its own io_context; stop()
// from any thread.

#include "api/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace jobs {

struct server_options {
  std::string address = "127.0.0.1";
  int port = 8780;  ///< 0: any free port (see port())
  int threads = 2;
  std::size_t body_limit = 1 << 20;
  std::size_t batch_body_limit = 16 << 20;  ///< for POST /v1/jobs/batch
  std::size_t header_limit = 16 << 10;
  std::chrono::milliseconds read_timeout{30000};
  int max_connections = 4096;
};

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

  server_options opts_;
  router& router_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> stopping_{false};
  struct registry;
  std::unique_ptr<registry> live_;  // open sockets, closed on stop
};

}  // namespace jobs
