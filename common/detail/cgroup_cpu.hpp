#pragma once
// The CPU a container's limit leaves this process, for the worker's rounds
// (workers/detail/round_hold.hpp), which size themselves by cores, and for
// how busy the machine counts as (machine_pace.hpp).
//
// A container's CPU limit (`docker run --cpus`, compose's `cpus`, a
// Kubernetes CPU limit) is a quota of the kernel's CFS scheduler, not a
// smaller set of cores: the process still sees every core of the host in its
// affinity mask and in /proc/stat. So with a limit of 2 CPUs on a 64-core
// host, a worker whose handlers use all it may have would never look busy
// against 64 cores. cgroup_cpu reads the limit and the cgroup's usage the way
// the kernel exposes them:
//
//   - where the hierarchies are mounted: /proc/self/mountinfo (a `cgroup2`
//     mount; `cgroup` mounts whose options name `cpu` and `cpuacct`), each
//     with the cgroup path its root shows (a container sees its own cgroup
//     as `/` under a cgroup namespace, the host's path without one);
//   - the process's cgroups: /proc/self/cgroup (`0::/path` for v2,
//     `N:cpu,cpuacct:/path` for v1);
//   - v2: `cpu.max` ("max 100000" or "QUOTA PERIOD", microseconds) of the
//     process's cgroup and of each ancestor the mount shows, the smallest
//     quota / period winning; usage from that cgroup's `cpu.stat`
//     (`usage_usec`);
//   - v1: `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`, the same
//     walk; usage from `cpuacct.usage` (ns) of the process's cpuacct cgroup.
//
// Anything missing or unreadable means no limit (or no usage): the caller
// falls back to the cores it sees. A limit is read once, at construction (a
// container's limit changes only by restarting it in practice).
//
// Thread-safety: const after construction; usage() reads files each call.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::detail {

/// A cgroup hierarchy mounted: its type, the cgroup path its root shows and where.
struct cgroup_mount {
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: the options naming controllers (cpu, cpuacct, ...)
  std::string root, mount_point;
};
/// The cgroup mounts of /proc/self/mountinfo's text.
std::vector<cgroup_mount> parse_cgroup_mounts(std::string_view mountinfo);

/// A process's cgroup in one hierarchy (a line of /proc/self/cgroup).
struct cgroup_membership {
  std::vector<std::string> controllers;  // empty for v2's `0::` line
  std::string path;
};
std::vector<cgroup_membership> parse_proc_cgroup(std::string_view text);

/// cpu.max's text as cores (quota / period); nothing for "max" or text that is not one.
std::optional<double> parse_cpu_max(std::string_view text);
/// cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us as cores; nothing for -1 or junk.
std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period);

class cgroup_cpu {
 public:
  /// Reads the process's own: /proc/self/mountinfo and /proc/self/cgroup.
  cgroup_cpu();
  /// From given texts (tests): `fs_prefix` is put before every mount point.
  cgroup_cpu(std::string_view mountinfo, std::string_view proc_cgroup, std::string fs_prefix);

  /// The cores the limit allows (e.g. 1.5); nothing without a limit.
  std::optional<double> limit_cores() const { return limit_; }
  /// The CPU time the limited cgroup used so far; nothing without a limit or
  /// when it cannot be read.
  std::optional<std::chrono::nanoseconds> usage() const;

 private:
  std::optional<double> limit_;
  std::string usage_file_;  // the limited cgroup's cpu.stat (v2) or cpuacct.usage (v1)
  bool usage_v2_ = false;
};

}  // namespace jobs::detail
