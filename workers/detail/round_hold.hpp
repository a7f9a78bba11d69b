#pragma once
// Holding back a worker's round while its own handlers keep every core
// busy (worker::impl::cycle()).
//
// A round records the outcomes of the handlers that returned and claims
// messages for the threads they freed, in one commit, with one ack and one
// delivery of new messages. When more than twice as many handlers are still
// running as there are cores, and the process uses nearly all the cores'
// time, a freed thread would only queue for a core: the round can wait for
// more finished jobs at no cost in throughput, and the commit, the acks and
// the claims of many are paid once. Twice, not just more: the round itself
// takes a few milliseconds of contended CPU, and handlers still running must
// keep the cores busy until it has claimed the freed threads' next jobs (with
// 8 threads on 2 cores, holding while 3 ran made 170-172 CPU-bound jobs/s,
// while 5 ran 177). So a round that would record fewer than `hold_jobs` waits, up
// to `max` from when it was first held back. Outcomes land at most `max`
// later; nothing waits when a core is to spare.
//
// Thread-safety: one owner (the coordinator thread).

#include "common/detail/machine_pace.hpp"
#include "workers/detail/in_flight.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace jobs::detail {

/// How many cores this process kept busy lately: its CPU time over the wall
/// time between samples at least 100 ms apart (0 until the second sample).
class cpu_meter {
 public:
  double busy_cores(steady_time now);

 private:
  steady_time at_{};
  std::chrono::nanoseconds cpu_{};
  double busy_ = 0;
};

/// The CPUs this process may use: the cores of its affinity mask, or fewer
/// under a container's CPU limit (`limit`, e.g. 1.5).
double usable_cpus(std::optional<double> limit);

class round_hold {
 public:
  /// `cpus`: usable_cpus(), whole cores or a container's limit (1.5).
  round_hold(double cpus, std::chrono::milliseconds max) : cpus_(cpus), max_(max) {}

  /// Whether to hold back a round that would record `finished` jobs while
  /// `still_running` handlers run and the process keeps `busy_cores` busy:
  /// more than twice as many handlers running as cores (the CPUs rounded
  /// up), all but half a core busy (under a limit below one CPU, half of
  /// it), and fewer than `hold_jobs` finished.
  bool hold(steady_time now, std::size_t finished, std::size_t hold_jobs, int still_running,
            double busy_cores);
  /// Whether a finished job may wait in a held round: a sync job not being
  /// stopped (a cancel, its timeout) and not due to be within the hold, or
  /// its handler's return would be overtaken by the write-off of a handler
  /// that never returned. Async handlers take no core: theirs go at once.
  bool may_wait(const in_hand& j, steady_time now) const {
    return !j.async && j.why == stop_reason::none && j.deadline > now + max_;
  }
  int cores() const { return static_cast<int>(std::ceil(cpus_)); }
  double cpus() const { return cpus_; }
  std::chrono::milliseconds max() const { return max_; }

  /// The round goes now, whatever hold() would say.
  void release() { since_ = {}; }
  /// How long the loop may wait for a message or a handler (at most
  /// `idle_ms`): a round held back is due when its hold ends.
  int wait_ms(steady_time now, int idle_ms) const;

 private:
  const double cpus_;
  const std::chrono::milliseconds max_;
  steady_time since_{};  ///< when the round now held back was first held (else zero)
};

}  // namespace jobs::detail
