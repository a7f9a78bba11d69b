#pragma once
// A TCP relay on 127.0.0.1 that loses a server's answer for real: a client
// connects to the relay as to the server, and the bytes pass both ways until
// the server's bytes to a client contain `marker`. Then that client's
// connection is closed with nothing more forwarded (the client sees it lost
// in the middle of an answer), while the server's side is only half-closed:
// the server finishes what it was doing, answers into the relay, and reads
// EOF after. With PostgreSQL, a deferred trigger that raises a NOTICE with
// the marker loses the reply of a COMMIT that lands.
//
// Thread-safety: port() and cuts() from any thread.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace jobs::test {

class cutting_relay {
 public:
  cutting_relay(int server_port, std::string marker);
  ~cutting_relay();
  cutting_relay(const cutting_relay&) = delete;
  cutting_relay& operator=(const cutting_relay&) = delete;

  int port() const { return port_; }
  /// Connections cut so far (one per marker seen).
  int cuts() const { return cuts_.load(); }

 private:
  void accept_loop();
  void pump(int client, int server);

  int server_port_;
  std::string marker_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> cuts_{0};
  std::mutex mu_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace jobs::test
