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

#include "workers/detail/cgroup_cpu.hpp"
#include "workers/detail/in_flight.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace jobs::detail {

using steady_time = std::chrono::steady_clock::time_point;

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

/// The CPU time counters of /proc/stat's first line ("cpu  user nice system
/// idle iowait irq softirq steal ..."), in ticks: `busy` is all but idle and
/// iowait. Nothing when the line is not one.
struct cpu_ticks {
  std::uint64_t busy = 0, all = 0;
};
std::optional<cpu_ticks> parse_cpu_ticks(std::string_view line);

/// How busy the whole machine's cores were lately, as a share of their time
/// (0 to 1), from /proc/stat over samples at least 100 ms apart (0 until the
/// second sample, or when /proc/stat cannot be read). /proc/stat shows the
/// host's cores even in a container; under a CPU limit (`limit`,
/// cgroup_cpu.hpp) the share is the larger of the host's and the limited
/// cgroup's usage over what the limit allows.
class machine_meter {
 public:
  explicit machine_meter(const cgroup_cpu* limit = nullptr) : limit_(limit) {}
  double busy_share(steady_time now);

 private:
  const cgroup_cpu* limit_;  // may be null: no limit
  steady_time at_{};
  std::optional<cpu_ticks> last_;
  std::optional<std::chrono::nanoseconds> used_;  // the limited cgroup's, at at_
  double share_ = 0;
};

/// Spacing a worker's rounds while the machine is busy.
///
/// A round's statement, commit, acks and wake-ups cost about as much for a
/// few jobs as for dozens; at a moderate rate each round carries a few, and
/// when the machine's cores are busy that fixed cost is CPU taken from the
/// API, the broker and the database (at 3,000 jobs/s on 2 cores, about 5
/// jobs a round; 4 ms apart, PostgreSQL's CPU a job fell from 0.19 ms to
/// 0.17-0.18 in scripts/bench's half-rate run). So while the whole
/// machine is at least `busy_share` busy, a small round (under a quarter of
/// the worker's slots, outcomes and claims counted) starts no sooner than
/// `gap` after the one before, and carries what arrived meanwhile. On an
/// idle machine, or for a round of many jobs, nothing waits; a job waits at
/// most `gap` to be claimed and `gap` for its outcome to be recorded.
class round_pace {
 public:
  static constexpr double default_busy_share = 0.75;

  explicit round_pace(std::chrono::milliseconds gap, double busy_share = default_busy_share)
      : gap_(gap), busy_share_(busy_share) {}

  /// Whether a round of `jobs` (outcomes and claims) of a worker with
  /// `slots` (handler threads and async slots) waits, with the machine
  /// `machine_busy` busy (a share). Remembers the answer for wait_ms().
  bool wait(steady_time now, std::size_t jobs, std::size_t slots, double machine_busy);
  /// A round began now (the gap counts from here).
  void began(steady_time now) {
    last_ = now;
    waiting_ = false;
  }
  /// The loop's wait (at most `idle_ms`): until the gap ends while a round waits.
  int wait_ms(steady_time now, int idle_ms) const;
  /// No round waits for the gap now (the next one still counts from the
  /// last round's start).
  void release() { waiting_ = false; }
  std::chrono::milliseconds gap() const { return gap_; }

 private:
  const std::chrono::milliseconds gap_;
  const double busy_share_;
  steady_time last_{};
  bool waiting_ = false;
};

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
