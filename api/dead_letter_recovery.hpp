#pragma once
// Republishes the jobs whose message was dead-lettered while they were
// still `queued`, so that no accepted job waits for ever without a message.
//
// A work queue dead-letters a message delivered `JOBS_QUEUE_DELIVERY_LIMIT`
// times without an ack: workers that crashed or lost their connection while
// they held it, claimed or not. A claimed job is `running` and its lease
// brings it back (api/scheduler.hpp); a job never claimed stays `queued`,
// and nothing else would ever publish it again. A worker also dead-letters a
// job message that reached the wrong queue.
//
// The fanout `jobs.dlx` gives every dead letter two copies (queues/amqp.hpp):
// `jobs.dead` keeps one for people, this consumes the one in `jobs.rescue`.
// For each job message it reads the job's row: still `queued`, the message
// goes again to the job's queue (from the row, not the message) with the
// header `x-jobs-rescues` counted up, and the copy is acked once the broker
// confirms; in any other state (claimed, finished, deleted) or for a body
// that is not a job message, the copy is acked and dropped. A job whose
// message comes back after `max_rescues` republishes ends `dead`, with an
// error that says so: a message no worker can claim must not loop for ever.
//
// Several API processes may run it: each copy goes to one of them, and a
// duplicate publish (a crash between the confirm and the ack) is dropped by
// the worker that finds the job already claimed.
//
// Thread-safety: owns its thread; construct and destroy from one thread.

#include "common/metrics.hpp"
#include "queues/consumer.hpp"
#include "queues/publisher.hpp"

#include <pqxx/connection>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace jobs {

class dead_letter_recovery {
 public:
  static constexpr int max_rescues = 3;
  static constexpr int prefetch = 100;

  /// `counts` (jobs_dead_letters_total{action}), when set, counts each
  /// dead letter handled: republished (confirmed), buried or dropped.
  dead_letter_recovery(std::string pg_url, std::string amqp_url, int heartbeat_s,
                       topology_options topology, publisher& pub,
                       metrics::family<metrics::counter>* counts = nullptr);
  ~dead_letter_recovery();
  dead_letter_recovery(const dead_letter_recovery&) = delete;
  dead_letter_recovery& operator=(const dead_letter_recovery&) = delete;

 private:
  // Where the publisher's confirms land (on its thread) and wake this one;
  // shared with the callbacks, which may outlive this object.
  struct inbox {
    inbox();
    ~inbox();
    void push(std::uint64_t generation, std::uint64_t tag, bool ok);
    std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> take();
    void wake();
    int fd = -1;  // eventfd: stop, or a confirm came
    std::mutex mu;
    std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> confirms;  // guarded by mu
  };

  void run();
  void handle(std::vector<delivery>& got);
  void settle_confirms();
  void count(const char* action);

  std::string pg_url_;
  publisher& pub_;
  broker_list brokers_;
  int heartbeat_s_;
  topology_options topology_;
  metrics::family<metrics::counter>* counts_;
  std::unique_ptr<consumer> amqp_;        // the thread's own
  std::unique_ptr<pqxx::connection> db_;  // the thread's own
  std::uint64_t generation_ = 0;          // of amqp_: tags of an older channel are void
  std::shared_ptr<inbox> inbox_ = std::make_shared<inbox>();
  std::atomic<bool> stopping_{false};

  std::thread thread_;
};

}  // namespace jobs
