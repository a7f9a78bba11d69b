#include "common/detail/cgroup_cpu.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace jobs::detail {

namespace {

std::vector<std::string_view> split(std::string_view s, char by) {
  std::vector<std::string_view> out;
  for (;;) {
    auto at = s.find(by);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::string_view trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

std::optional<long long> to_int(std::string_view s) {
  s = trim(s);
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> read_all(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool names(const std::vector<std::string>& controllers, std::string_view c) {
  return std::find(controllers.begin(), controllers.end(), c) != controllers.end();
}

// The directory of cgroup `path` under `m`, or nothing when the mount does
// not show it (its root is not an ancestor of `path`).
std::optional<std::string> dir_of(const cgroup_mount& m, const std::string& prefix,
                                  std::string_view path) {
  std::string_view root = m.root == "/" ? std::string_view() : std::string_view(m.root);
  if (!path.starts_with(root)) return std::nullopt;
  auto rel = path.substr(root.size());
  if (!rel.empty() && rel.front() != '/') return std::nullopt;  // "/a" is not under "/ab"
  if (rel == "/") rel = {};
  return prefix + m.mount_point + std::string(rel);
}

// `dir` and its ancestors up to `top`, nearest first.
std::vector<std::string> up_to(std::string dir, const std::string& top) {
  std::vector<std::string> out{dir};
  while (dir.size() > top.size()) {
    dir.resize(dir.rfind('/'));
    if (dir.size() < top.size()) break;
    out.push_back(dir);
  }
  return out;
}

}  // namespace

std::vector<cgroup_mount> parse_cgroup_mounts(std::string_view mountinfo) {
  std::vector<cgroup_mount> out;
  for (auto line : split(mountinfo, '\n')) {
    auto f = split(trim(line), ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
    auto type = *(dash + 1);
    if (type != "cgroup" && type != "cgroup2") continue;
    cgroup_mount m;
    m.v2 = type == "cgroup2";
    m.root = std::string(f[3]);
    m.mount_point = std::string(f[4]);
    if (!m.v2)
      for (auto opt : split(*(dash + 3), ',')) m.controllers.emplace_back(opt);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<cgroup_membership> parse_proc_cgroup(std::string_view text) {
  std::vector<cgroup_membership> out;
  for (auto line : split(text, '\n')) {
    line = trim(line);
    auto a = line.find(':');
    if (a == std::string_view::npos) continue;
    auto b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    cgroup_membership m;
    auto list = line.substr(a + 1, b - a - 1);
    if (!list.empty())
      for (auto c : split(list, ',')) m.controllers.emplace_back(c);
    m.path = std::string(line.substr(b + 1));
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<double> parse_cpu_max(std::string_view text) {
  auto f = split(trim(text), ' ');
  if (f.size() != 2) return std::nullopt;
  auto period = to_int(f[1]);
  if (f[0] == "max" || !period || *period <= 0) return std::nullopt;
  auto quota = to_int(f[0]);
  if (!quota || *quota <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period) {
  auto q = to_int(quota), p = to_int(period);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;  // -1: no quota
  return static_cast<double>(*q) / static_cast<double>(*p);
}

cgroup_cpu::cgroup_cpu()
    : cgroup_cpu(read_all("/proc/self/mountinfo").value_or(""),
                 read_all("/proc/self/cgroup").value_or(""), "") {}

cgroup_cpu::cgroup_cpu(std::string_view mountinfo, std::string_view proc_cgroup,
                       std::string fs_prefix) {
  auto mounts = parse_cgroup_mounts(mountinfo);
  auto member = parse_proc_cgroup(proc_cgroup);
  auto consider = [&](double cores, std::string usage_file, bool v2) {
    if (limit_ && *limit_ <= cores) return;
    limit_ = cores;
    usage_file_ = std::move(usage_file);
    usage_v2_ = v2;
  };
  for (const auto& mount : mounts) {
    bool cpu = !mount.v2 && names(mount.controllers, "cpu");
    if (!mount.v2 && !cpu) continue;
    for (const auto& m : member) {
      if (mount.v2 != m.controllers.empty() || (cpu && !names(m.controllers, "cpu"))) continue;
      auto dir = dir_of(mount, fs_prefix, m.path);
      if (!dir) continue;
      for (const auto& d : up_to(*dir, fs_prefix + mount.mount_point)) {
        if (mount.v2) {
          if (auto text = read_all(d + "/cpu.max"))
            if (auto cores = parse_cpu_max(*text)) consider(*cores, d + "/cpu.stat", true);
          continue;
        }
        auto quota = read_all(d + "/cpu.cfs_quota_us");
        auto period = read_all(d + "/cpu.cfs_period_us");
        if (!quota || !period) continue;
        auto cores = parse_cfs_quota(*quota, *period);
        if (!cores) continue;
        // Usage is the cpuacct controller's: beside the quota when the two
        // are mounted together, else the same cgroup under its own mount.
        std::string usage = d + "/cpuacct.usage";
        if (!names(mount.controllers, "cpuacct")) {
          auto rel = d.substr(fs_prefix.size() + mount.mount_point.size());
          for (const auto& acct : mounts)
            if (!acct.v2 && names(acct.controllers, "cpuacct")) {
              std::string root = acct.root == "/" ? "" : acct.root;
              std::string mine = mount.root == "/" ? "" : mount.root;
              if (root == mine) usage = fs_prefix + acct.mount_point + rel + "/cpuacct.usage";
            }
        }
        consider(*cores, usage, false);
      }
    }
  }
}

std::optional<std::chrono::nanoseconds> cgroup_cpu::usage() const {
  if (!limit_) return std::nullopt;
  auto text = read_all(usage_file_);
  if (!text) return std::nullopt;
  if (!usage_v2_) {
    auto ns = to_int(*text);
    if (!ns) return std::nullopt;
    return std::chrono::nanoseconds(*ns);
  }
  for (auto line : split(*text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() == 2 && f[0] == "usage_usec")
      if (auto us = to_int(f[1])) return std::chrono::microseconds(*us);
  }
  return std::nullopt;
}

}  // namespace jobs::detail
