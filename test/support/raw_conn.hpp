#pragma once
// One raw TCP connection to the API on 127.0.0.1, for tests that send bytes
// no HTTP client would (hostile requests, a body held back).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jobs::test {

class raw_conn {
 public:
  explicit raw_conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("raw_conn: cannot connect to port " + std::to_string(port));
  }
  ~raw_conn() { ::close(fd_); }
  raw_conn(const raw_conn&) = delete;
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early; its answer is what counts
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Reads until the server closes or `timeout` passes; `closed` tells which.
  std::string read_all(std::chrono::milliseconds timeout) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
      // One whole response with Content-Length is enough.
      auto end = out.find("\r\n\r\n");
      auto cl = out.find("Content-Length: ");
      if (end != std::string::npos && cl != std::string::npos && cl < end) {
        auto len = std::stoul(out.substr(cl + 16));
        if (out.size() >= end + 4 + len) return out;
      }
    }
  }
  bool closed = false;

 private:
  int fd_ = -1;
};

}  // namespace jobs::test
