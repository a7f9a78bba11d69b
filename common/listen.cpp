#include "common/listen.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace jobs {

void listen_on(boost::asio::ip::tcp::acceptor& a, const std::string& address, int port,
               int backlog) {
  namespace ip = boost::asio::ip;
  boost::system::error_code ec;
  auto addr = ip::make_address(address, ec);
  if (ec)
    throw std::runtime_error(fmt::format("cannot listen on {:?}: not an IP address", address));
  ip::tcp::endpoint ep{addr, static_cast<unsigned short>(port)};
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(backlog, ec);
  if (!ec) return;
  auto where =
      addr.is_v6() ? fmt::format("[{}]:{}", address, port) : fmt::format("{}:{}", address, port);
  throw std::runtime_error(fmt::format("cannot listen on {}: {}", where, ec.message()));
}

}  // namespace jobs
