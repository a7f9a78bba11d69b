#include "support/cutting_relay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>

namespace jobs::test {

namespace {
constexpr int tick_ms = 100;  // how often a blocked thread looks at stopping_

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    auto sent = ::send(fd, data, n, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data += sent;
    n -= static_cast<std::size_t>(sent);
  }
  return true;
}
}  // namespace

cutting_relay::cutting_relay(int server_port, std::string marker)
    : server_port_(server_port), marker_(std::move(marker)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(0);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::runtime_error("cutting_relay: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

cutting_relay::~cutting_relay() {
  stopping_ = true;
  acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard lk(mu_);
  for (auto& t : pumps_) t.join();
}

void cutting_relay::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, tick_ms) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = loopback(server_port_);
    if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (server >= 0) ::close(server);
      ::close(client);
      continue;
    }
    std::lock_guard lk(mu_);
    pumps_.emplace_back([this, client, server] { pump(client, server); });
  }
}

void cutting_relay::pump(int client, int server) {
  std::string tail;  // the server's last bytes, for a marker split across reads
  char buf[65536];
  bool cut = false;
  while (!stopping_) {
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(p, 2, tick_ms) <= 0) continue;
    if (p[0].revents) {
      auto n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0 || !send_all(server, buf, static_cast<std::size_t>(n))) break;
    }
    if (p[1].revents) {
      auto n = ::recv(server, buf, sizeof buf, 0);
      if (n <= 0) break;
      tail.append(buf, static_cast<std::size_t>(n));
      if (tail.find(marker_) != std::string::npos) {
        cut = true;
        break;
      }
      if (!send_all(client, buf, static_cast<std::size_t>(n))) break;
      if (tail.size() > marker_.size()) tail.erase(0, tail.size() - marker_.size());
    }
  }
  ::shutdown(client, SHUT_RDWR);
  ::close(client);
  if (cut) {
    ++cuts_;
    // The server reads EOF once it is done; its answer goes nowhere.
    ::shutdown(server, SHUT_WR);
    while (!stopping_) {
      pollfd p{server, POLLIN, 0};
      if (::poll(&p, 1, tick_ms) > 0 && ::recv(server, buf, sizeof buf, 0) <= 0) break;
    }
  }
  ::close(server);
}

}  // namespace jobs::test
