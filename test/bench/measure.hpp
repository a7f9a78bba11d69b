#pragma once
// What the benchmark reads besides its own clock: the processes' CPU time
// and memory (/proc), and PostgreSQL's view of a run (the jobs' timestamps,
// commits and WAL written).

#include "common/detail/machine_pace.hpp"

#include <pqxx/connection>

#include <optional>
#include <string>
#include <vector>

namespace jobs::bench {

/// CPU seconds a process has used, user + system. With `children`, also
/// its live children's and its reaped children's (PostgreSQL's backends).
double cpu_seconds(int pid, bool children = false);
/// Context switches (voluntary and not) of a process's threads alive now;
/// with `children`, its live children's too (PostgreSQL's backends). Those
/// of threads or children that ended are not counted: a delta between two
/// readings is approximate (low) when they come and go.
long context_switches(int pid, bool children = false);
/// The whole machine's CPU time counters (/proc/stat), steal included:
/// none when they cannot be read.
std::optional<detail::cpu_ticks> machine_ticks();
/// How fast a core of this machine runs now, on this thread's CPU clock (so
/// neither the hypervisor's steal nor waiting for a core counts): a VM's
/// cores differ by the hour, and a run's numbers mean little without them.
struct core_speed {
  double int_steps_per_us = 0;  ///< dependent 64-bit multiply-adds per µs
  double mem_load_ns = 0;       ///< a dependent load, in random order over 32 MiB
};
core_speed probe_core_speed();
/// VmRSS and VmHWM (peak) in bytes; 0 when unknown.
long rss_bytes(int pid);
long peak_rss_bytes(int pid);

struct pg_counters {
  long commits = 0;
  long wal_bytes = 0;  ///< the WAL position
};
pg_counters read_counters(pqxx::connection& c);

struct completion {
  long total = 0, succeeded = 0, other_final = 0;
  double jobs_per_s = 0;  ///< jobs / (last finished_at - first created_at)
  double e2e_p50_ms = 0, e2e_p95_ms = 0, e2e_p99_ms = 0, e2e_p999_ms = 0;
};
/// The tenant's jobs, once all are final.
completion read_completion(pqxx::connection& c, const std::string& tenant);
/// Whether any of the tenant's jobs is not final yet.
bool any_unfinished(pqxx::connection& c, const std::string& tenant);

/// The API's group commits and publisher confirms so far, from its
/// GET /metrics (sums and counts of its histograms); none when it serves
/// none (metrics off, or a token set) or a series is missing.
struct submit_counters {
  double commit_seconds = 0, confirm_seconds = 0;
  long commits = 0, committed_jobs = 0, confirms = 0;
};
std::optional<submit_counters> read_submit_counters(int api_port);

/// The p-th percentile (0..100) of `v` (sorted in place), nearest rank.
double percentile(std::vector<double>& v, double p);

}  // namespace jobs::bench
