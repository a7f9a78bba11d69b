#pragma once
// Consumes one queue with a prefetch window (basic.qos) and manual acks.
//
// `poll` waits (bounded) until a delivery, or the caller's wake fd, is
// readable, then returns every delivery already received without blocking
// again. Acks and rejects go out on the same connection, so the consumer
// belongs to one thread (the worker's coordinator). Heartbeats are serviced
// by poll; call it at least every few seconds.
//
// Errors: throws amqp_error when the connection or channel is lost; the
// broker then requeues everything unacked, and the owner reconnects.
// Thread-safety: none; one thread.

#include "queues/amqp.hpp"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace jobs {

struct delivery {
  uint64_t tag = 0;
  std::string message_id;
  bool redelivered = false;
  long delivery_count = 0;  ///< x-delivery-count (quorum queues): earlier deliveries
  std::string body;
  std::map<std::string, std::string> headers;  ///< the string-valued ones
};

class consumer {
 public:
  consumer(const amqp_address& a, int heartbeat_s, std::string queue, int prefetch,
           const topology_options& t);
  /// Consumes on an open connection (e.g. from broker_list::connect); with
  /// `start` false it only declares and sets the prefetch, and deliveries
  /// begin at consume().
  consumer(std::unique_ptr<amqp_connection> c, std::string queue, int prefetch,
           const topology_options& t, bool start = true);

  /// Appends available deliveries to `out`; waits up to wait_ms for the first.
  void poll(std::vector<delivery>& out, int wait_ms, int wake_fd);
  void ack(uint64_t tag, bool multiple = false);
  /// Acks `tags` in as few frames as it can: one `multiple` ack up to the
  /// highest of them below every delivery still held, then one each for
  /// the rest. (One frame for a cycle's completions is one settle command
  /// in the quorum queue's log instead of one per message.)
  void ack_all(std::vector<uint64_t> tags);
  /// Negative ack; without requeue the broker dead-letters the message.
  void reject(uint64_t tag, bool requeue);
  /// Moves a message that can't be handled at all to the dead-letter
  /// exchange with `reason` in its `x-dead-reason` header (and the queue in
  /// `x-original-queue`), then acks it. Same channel, so the broker sees the
  /// publish before the ack.
  void dead_letter(const delivery& d, std::string_view reason);
  /// Stops new deliveries (basic.cancel); acks still work afterwards.
  void cancel();
  /// Starts deliveries again after cancel() (basic.consume); no-op while consuming.
  void consume();
  bool consuming() const { return consuming_; }
  /// Tests only: shuts the socket down, as a broker that went away would;
  /// the next call on the connection fails.
  void sever();

 private:
  bool read_one(std::vector<delivery>& out, timeval* timeout);

  std::unique_ptr<amqp_connection> conn_;
  std::string queue_;
  std::string tag_;
  bool consuming_ = false;
  std::set<uint64_t> held_;  // delivered, not yet acked or rejected
};

}  // namespace jobs
