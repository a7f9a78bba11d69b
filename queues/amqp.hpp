#pragma once
// A RabbitMQ (AMQP 0-9-1) connection on rabbitmq-c, and the platform's
// queue topology.
//
// Topology, declared idempotently by every process at start:
//   exchange `jobs` (direct, durable)         -> queue per family, bound by its name
//   queues `email`, `processing`, `webhooks`  quorum, durable, x-delivery-limit,
//                                             dead-lettered to `jobs.dlx`
//   exchange `jobs.dlx` (fanout, durable)     -> queue `jobs.dead` (quorum,
//                                                x-max-length, drop-head)
//                                             -> queue `jobs.rescue` (quorum)
// A message that was delivered `delivery_limit` times without an ack (a
// worker crashing on it again and again) is dead-lettered, never looping.
// The fanout gives each dead letter two copies: `jobs.dead` keeps one for
// people to inspect, and the API's dead-letter recovery consumes the other
// (api/dead_letter_recovery.hpp) and republishes jobs still `queued`.
// `jobs.dead` keeps the newest `dead_letter_max` (the oldest are dropped), so
// that a flood of dead letters cannot fill the broker's disk and stop every
// publisher with an alarm. A `jobs.dead` declared before with another bound
// (or none) is kept as it is, with a warning: the broker refuses to change
// a queue's arguments, and its messages are for people, not the platform.
//
// TLS (amqps://): the broker's certificate is verified against the CA file
// (or the system's CAs) and its name against the URL's host; a failed
// verification is an amqp_error from the constructor, within connect_timeout.
//
// Errors: every failure throws amqp_error; the connection is then unusable
// and the owner opens a new one (publisher and consumer do, with backoff).
// Thread-safety: none; a connection belongs to one thread.

#include <amqp.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jobs {

struct amqp_error : std::runtime_error {
  using std::runtime_error::runtime_error;
  /// The broker's AMQP reply code when it closed the channel (`channel_closed`)
  /// or the connection: 404 not found, 406 precondition failed, ...; 0 for
  /// every other failure.
  amqp_error(const std::string& what, int reply_code, bool channel_closed)
      : std::runtime_error(what), reply_code(reply_code), channel_closed(channel_closed) {}

  int reply_code = 0;
  bool channel_closed = false;  ///< only the channel: the connection is still usable
};

struct amqp_address {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  bool tls = false;       ///< amqps://: TLS, certificate and host name verified
  bool verify = true;     ///< amqps://…?verify=verify_none turns verification off
  std::string ca_file;    ///< PEM CAs to trust; empty: the system's
  std::string cert_file;  ///< client certificate (PEM), with key_file
  std::string key_file;
};
/// Parses amqp://user:pass@host:port/vhost (vhost percent-decoded; "/" when
/// empty) and amqps:// (port 5671 by default) with RabbitMQ's URI query
/// parameters cacertfile, certfile, keyfile and verify (verify_peer, the
/// default, or verify_none). Throws amqp_error for anything else.
amqp_address parse_amqp_url(std::string_view url);

inline constexpr std::string_view jobs_exchange = "jobs";
inline constexpr std::string_view dead_exchange = "jobs.dlx";
inline constexpr std::string_view dead_queue = "jobs.dead";
inline constexpr std::string_view rescue_queue = "jobs.rescue";

class amqp_connection {
 public:
  static constexpr amqp_channel_t channel = 1;
  static constexpr std::chrono::seconds connect_timeout{10};

  amqp_connection(const amqp_address& a, int heartbeat_s);
  ~amqp_connection();
  amqp_connection(const amqp_connection&) = delete;
  amqp_connection& operator=(const amqp_connection&) = delete;

  amqp_connection_state_t raw() const { return conn_; }
  int fd() const { return amqp_get_sockfd(conn_); }
  /// amqps://: bytes must go through rabbitmq-c's TLS socket, never fd() directly.
  bool tls() const { return tls_; }
  /// After a write that may have stopped mid-frame: shuts the socket down, so
  /// that the destructor neither sends its closes after a torn frame nor
  /// blocks on a broker that is not reading.
  void abandon();
  /// True when rabbitmq-c holds unread frames or bytes (poll() would not see them).
  bool has_buffered_input() const;

  /// After the broker closed the channel (an amqp_error from check_rpc
  /// with `channel_closed`): acknowledges the close and opens the channel
  /// again.
  void reopen_channel();
  /// Throws amqp_error unless the last synchronous call succeeded; a close by
  /// the broker carries its reply code.
  void check_rpc(const char* what);
  /// Throws amqp_error for a negative rabbitmq-c status code.
  static void check_status(int status, const char* what);

 private:
  amqp_connection_state_t conn_;
  bool tls_ = false;
  bool abandoned_ = false;
};

struct topology_options {
  int delivery_limit = 10;
  long dead_letter_max = 100000;  ///< messages `jobs.dead` keeps
};
/// Declares exchanges, queues and bindings; safe to run any number of times.
void declare_topology(amqp_connection& c, const topology_options& o);

/// Deletes every message of a queue (tests, admin). Returns how many.
unsigned purge_queue(amqp_connection& c, std::string_view queue);

/// Ready messages and consumers of a queue (passive declare).
struct queue_counts {
  unsigned messages = 0;
  unsigned consumers = 0;
};
queue_counts inspect_queue(amqp_connection& c, std::string_view queue);

inline amqp_bytes_t as_bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view as_view(amqp_bytes_t b) {
  return {static_cast<const char*>(b.bytes), b.len};
}

}  // namespace jobs
