#pragma once
// The RabbitMQ nodes a process may use: one node, or the nodes of a cluster.
//
// JOBS_AMQP_URL holds one URL or a comma-separated list of them:
//   amqp://user:pass@mq-0:5672/vh,amqp://user:pass@mq-1:5672/vh
// An entry after the first may be written as just `host[:port]`; it takes
// the credentials and vhost of the first entry (port 5672 when omitted):
//   amqp://user:pass@mq-0:5672/vh,mq-1:5672,mq-2
//
// connect() tries the nodes in list order starting after the node it last
// connected to, so a reconnect after a node failed goes to another node
// first, and a process starting fresh prefers the first entry. In a cluster
// with quorum queues every node serves every queue; which node a client is
// on only changes the hop the broker makes to the queue's leader.
//
// Errors: the constructor throws amqp_error on a malformed list; connect()
// throws amqp_error (naming each node's failure) when no node accepts.
// Thread-safety: none; each owner (publisher thread, worker coordinator)
// has its own list.

#include "queues/amqp.hpp"

#include <memory>
#include <string_view>
#include <vector>

namespace jobs {

/// Parses a comma-separated list of amqp:// URLs (see above).
std::vector<amqp_address> parse_amqp_urls(std::string_view list);

/// Throws amqp_error naming the first TLS file (cacertfile, certfile,
/// keyfile) of the list's URLs that cannot be read: what connecting would
/// otherwise retry for ever.
void check_amqp_tls_files(std::string_view list);

class broker_list {
 public:
  explicit broker_list(std::string_view urls);

  /// Opens a connection (channel open) to the first node that accepts.
  std::unique_ptr<amqp_connection> connect(int heartbeat_s);
  /// The node of the last successful connect().
  const amqp_address& current() const { return nodes_[current_]; }
  std::size_t size() const { return nodes_.size(); }

 private:
  std::vector<amqp_address> nodes_;
  std::size_t current_ = 0;
  bool connected_once_ = false;
};

}  // namespace jobs
