#pragma once
// Publishes job messages with publisher confirms, pipelined.
//
// `publish` queues a message and returns at once; a thread of its own owns
// the connection, sends everything queued without waiting for the previous
// confirm, and calls each message's `done` when the broker confirmed it
// (ok = true), returned it as unroutable (ok = false), or the deadline
// passed (ok = false). A nack drops the connection: the message is sent
// again on a new one (next node first) until its deadline. Messages are persistent and mandatory.
//
// When the connection fails, it reconnects with backoff, to the next node of
// the broker list first (queues/brokers.hpp), and re-sends every message not
// yet confirmed (the broker may then hold a duplicate; workers drop it
// because claims are compare-and-set). A message whose confirm does not come
// before its deadline is reported failed, never accepted.
//
// Config (publisher_options): url (one or a comma-separated list), heartbeat, confirm deadline,
// topology. Thread-safety: publish() and connected() may be called from any thread; `done` runs on
// the publisher's thread and must not block.

#include "common/metrics.hpp"
#include "queues/amqp.hpp"
#include "queues/brokers.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace jobs {

struct publisher_options {
  std::string url;  ///< one amqp:// URL or a list (queues/brokers.hpp)
  int heartbeat_s = 30;
  std::chrono::milliseconds confirm_timeout{10000};
  topology_options topology;
  /// When set, observes the seconds from publish() to each broker ack.
  metrics::histogram* confirm_seconds = nullptr;
  /// When set, counts the messages given up unconfirmed (their confirm timeout).
  metrics::counter* unconfirmed = nullptr;
};

class publisher {
 public:
  using done_fn = std::function<void(bool ok, std::string_view error)>;
  /// String-valued AMQP headers (e.g. `traceparent`).
  using headers = std::vector<std::pair<std::string, std::string>>;

  explicit publisher(publisher_options o);
  ~publisher();  ///< stop(): fails what is still unconfirmed, joins
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  /// `extra` goes in the message's AMQP headers.
  void publish(std::string routing_key, std::string message_id, std::string body, done_fn done,
               headers extra = {});
  /// True while a confirm-mode channel to the broker is open.
  bool connected() const noexcept { return connected_.load(); }
  /// True while the broker said it reads nothing this connection publishes
  /// (connection.blocked: a memory or disk alarm), until connection.unblocked
  /// or a new connection. Messages published meanwhile wait here, unsent,
  /// until then or their confirm timeout.
  bool blocked() const noexcept { return blocked_.load(); }
  /// Connected, not blocked, and not stalled (a message given up unconfirmed,
  /// nothing confirmed since): what is published now can be confirmed.
  /// Whenever nothing has waited for a confirm for `probe_every`, the
  /// publisher sends a probe (a message no queue is bound for, which the
  /// broker confirms once it has routed it nowhere): an idle connection
  /// learns of a resource alarm (RabbitMQ says connection.blocked only to a
  /// connection that publishes) and of a broker that stopped confirming
  /// without a job paying for it, and a stall ends with the probe's confirm.
  bool accepting() const noexcept { return connected() && !blocked() && !stalled_.load(); }
  static constexpr std::chrono::milliseconds probe_every{1000};
  /// The probe's routing key: bound to no queue.
  static constexpr std::string_view probe_key = "jobs.probe";
  /// True while connected and no message has waited longer than `within` for
  /// its confirm: a broker that takes messages and confirms none (frozen,
  /// or blocked by a resource alarm) keeps the channel open but is not ready.
  /// Nor while blocked(), nor once a message was given up unconfirmed (its confirm timeout),
  /// until the broker confirms anything again or a new connection is open:
  /// without this, the broker looked ready again as soon as the last waiting
  /// message was given up.
  bool confirming(std::chrono::milliseconds within) const noexcept;
  /// Why confirming(within) is false, or that it is true, as /readyz and the
  /// admin dashboard name it: "unreachable" (no channel open), "blocked" (a
  /// memory or disk alarm), "stalled" (a message waited past `within` or was
  /// given up unconfirmed, nothing confirmed since) or "accepting".
  std::string_view state(std::chrono::milliseconds within) const noexcept;
  void stop();

 private:
  struct item {
    std::string routing_key, message_id, body;
    done_fn done;
    std::chrono::steady_clock::time_point deadline;
    headers extra = {};
  };
  void run();
  bool connect();
  void send_pending(std::deque<item>& batch);
  void read_confirms(int wait_ms);
  void settle(uint64_t tag, bool multiple, bool ok, const char* why);
  void expire(std::chrono::steady_clock::time_point now);
  void fail_all(const char* why);
  void probe(std::chrono::steady_clock::time_point now);
  void wake();
  void sleep_until(std::chrono::steady_clock::time_point until);

  publisher_options opts_;
  broker_list brokers_;
  std::unique_ptr<amqp_connection> conn_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd: publish() wakes the thread out of poll()

  std::mutex mu_;
  std::deque<item> pending_;  // guarded by mu_

  // Owned by the publisher thread.
  uint64_t next_tag_ = 1;
  bool outage_logged_ = false;
  bool nacked_ = false;  // the connection was dropped after a nack, no ack since
  std::map<uint64_t, item> unconfirmed_;
  // When the oldest unconfirmed message was published (steady clock ticks), 0: none.
  std::atomic<std::int64_t> oldest_unconfirmed_{0};
  // A message was given up unconfirmed on this connection, no confirm since.
  std::atomic<bool> stalled_{false};
  std::atomic<bool> blocked_{false};                    // connection.blocked, no unblocked since
  std::chrono::steady_clock::time_point next_probe_{};  // while stalled_
  std::map<std::string, std::string> returned_;         // message_id -> reason
  // Frames encoded for one send() (queues/publish_frames.hpp), written out
  // every wire_flush_bytes; a buffer grown past twice that (large bodies)
  // is let go after the write.
  std::string wire_;
  static constexpr std::size_t wire_flush_bytes = 128 * 1024;
  std::thread thread_;
};

}  // namespace jobs
