#pragma once
// The webhook workload's receiver: a lean HTTP/1.1 server (Boost.Beast,
// coroutines, keep-alive) on a free loopback port that answers every
// request 200 after `delay` (an Asio timer, never a blocking sleep, so one
// thread serves thousands of requests a second and hundreds at once).
//
// It counts the requests and keeps the `webhook-id` header of each (the
// job id, see README "Webhooks"), so a run can tell which succeeded jobs
// really reached it. It does not check signatures (the e2e webhook tests do).
//
// Thread-safety: one I/O thread of its own; the accessors from any thread.

#include <chrono>
#include <memory>
#include <string>
#include <unordered_set>

namespace jobs::bench {

class delivery_sink {
 public:
  /// Listens on 127.0.0.1 (a free port) and serves until destroyed.
  explicit delivery_sink(std::chrono::milliseconds delay);
  ~delivery_sink();
  delivery_sink(const delivery_sink&) = delete;
  delivery_sink& operator=(const delivery_sink&) = delete;

  int port() const;
  /// Requests answered so far.
  long deliveries() const;
  /// Connections accepted so far.
  long connections() const;
  /// The distinct webhook-id headers seen so far.
  std::unordered_set<std::string> ids() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace jobs::bench
