#pragma once
// How busy the whole machine is, and spacing small write rounds while it is
// busy: a worker's rounds (workers/detail/worker_cycle.cpp) and the API's
// group commits (api/submitter.hpp).
//
// Thread-safety: one owner per object.

#include "common/detail/cgroup_cpu.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace jobs::detail {

using steady_time = std::chrono::steady_clock::time_point;

/// The CPU time counters of /proc/stat's first line ("cpu  user nice system
/// idle iowait irq softirq steal ..."), in ticks: `busy` is all but idle and
/// iowait; `steal` (in `busy`) the time a hypervisor ran something else
/// while this machine had work. Nothing when the line is not one.
struct cpu_ticks {
  std::uint64_t busy = 0, all = 0, steal = 0;
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

/// Spacing small write rounds while the machine is busy.
///
/// A round's statement, commit and wake-ups cost about as much for a few
/// jobs as for dozens; at a moderate rate each round carries a few, and when
/// the machine's cores are busy that fixed cost is CPU taken from the API,
/// the broker and the database. So while the whole machine is at least
/// `busy_share` busy, a small round (under a quarter of `slots`) starts no
/// sooner than `gap` after the one before, and carries what arrived
/// meanwhile. On an idle machine, or for a round of many jobs, nothing
/// waits. Two writers use it:
///
///   - a worker's rounds (`JOBS_WORKER_ROUND_GAP_MS`, 4 ms; jobs are its
///     outcomes and claims, slots its handler threads and async slots): a
///     job waits at most `gap` to be claimed and `gap` for its outcome to be
///     recorded. At 3,000 jobs/s on 2 cores, about 5 jobs a round; 4 ms
///     apart, PostgreSQL's CPU a job fell from 0.19 ms to 0.17-0.18 in
///     scripts/bench's half-rate run.
///   - the API's group commits (`JOBS_SUBMIT_COMMIT_GAP_MS`, 3 ms; jobs are
///     the submissions queued, slots JOBS_SUBMIT_BATCH_MAX): a submission
///     waits at most `gap` for its commit to begin (README, Performance).
class round_pace {
 public:
  static constexpr double default_busy_share = 0.75;

  explicit round_pace(std::chrono::milliseconds gap, double busy_share = default_busy_share)
      : gap_(gap), busy_share_(busy_share) {}

  /// Whether a round of `jobs` out of `slots` waits, with the machine
  /// `machine_busy` busy (a share). Remembers the answer for wait_ms().
  bool wait(steady_time now, std::size_t jobs, std::size_t slots, double machine_busy);
  /// Whether such a round would wait on a busy machine: the tests of wait()
  /// but the machine's, for a caller whose reading of it costs more.
  bool within_gap(steady_time now, std::size_t jobs, std::size_t slots) const;
  /// A round began now (the gap counts from here).
  void began(steady_time now) {
    last_ = now;
    waiting_ = false;
  }
  /// The loop's wait (at most `idle_ms`): until the gap ends while a round waits.
  int wait_ms(steady_time now, int idle_ms) const;
  /// When the gap since the last round's start ends.
  steady_time gap_end() const { return last_ + gap_; }
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

}  // namespace jobs::detail
