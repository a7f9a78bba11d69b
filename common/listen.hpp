#pragma once
// Opening a TCP listener (the API's, a /metrics one), with an error that
// says where it could not listen.

#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace jobs {

/// Opens `a` on `address`:`port` (port 0: any free one), reusing the
/// address, and listens. Throws std::runtime_error naming the address and
/// the port when it cannot ("cannot listen on 127.0.0.1:8780: Address
/// already in use").
void listen_on(boost::asio::ip::tcp::acceptor& a, const std::string& address, int port,
               int backlog = boost::asio::socket_base::max_listen_connections);

}  // namespace jobs
