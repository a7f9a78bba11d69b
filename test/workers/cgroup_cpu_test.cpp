// Unit tests of reading a container's CPU limit (common/detail/cgroup_cpu.hpp):
// the kernel's texts parsed, cgroup trees laid out in a temp dir, and, where
// this process may create cgroups (root, a writable cgroup v1 `cpu` mount or
// a v2 mount with the cpu controller), a child process under a real quota.
#include "common/detail/cgroup_cpu.hpp"
#include "workers/detail/round_hold.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
using jobs::detail::cgroup_cpu;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    char name[] = "/tmp/cgroup-cpu-test.XXXXXX";
    path = mkdtemp(name);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A cgroup v2 host (systemd's layout), v1 hybrid (this kind of VM), v1 with
// cpu and cpuacct mounted together (Docker's older hosts).
const char* v2_mounts =
    "24 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "25 30 0:23 / /proc rw,nosuid - proc proc rw\n";
const char* v1_split_mounts =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const char* v1_joint_mounts =
    "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup "
    "rw,cpu,cpuacct\n";

}  // namespace

TEST_CASE("the kernel's texts: mountinfo, /proc/self/cgroup, cpu.max, cfs quota") {
  auto m = jobs::detail::parse_cgroup_mounts(v1_split_mounts);
  REQUIRE(m.size() == 4);  // the tmpfs is not one
  CHECK_FALSE(m[0].v2);
  CHECK(m[0].mount_point == "/sys/fs/cgroup/cpu");
  CHECK(m[0].controllers == std::vector<std::string>{"rw", "cpu"});
  CHECK(m[3].v2);
  CHECK(m[3].mount_point == "/sys/fs/cgroup/unified");
  auto j = jobs::detail::parse_cgroup_mounts(v1_joint_mounts);
  REQUIRE(j.size() == 1);
  CHECK(j[0].root == "/docker/abc");
  CHECK(jobs::detail::parse_cgroup_mounts("not a mountinfo line\n\n").empty());

  auto p = jobs::detail::parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/docker/abc\n0::/\n");
  REQUIRE(p.size() == 3);
  CHECK(p[1].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(p[1].path == "/docker/abc");
  CHECK(p[2].controllers.empty());
  CHECK(p[2].path == "/");

  CHECK(jobs::detail::parse_cpu_max("150000 100000\n") == 1.5);
  CHECK(jobs::detail::parse_cpu_max("50000 100000") == 0.5);
  CHECK_FALSE(jobs::detail::parse_cpu_max("max 100000\n"));
  CHECK_FALSE(jobs::detail::parse_cpu_max("junk"));
  CHECK_FALSE(jobs::detail::parse_cpu_max("100000 0"));
  CHECK_FALSE(jobs::detail::parse_cpu_max(""));
  CHECK(jobs::detail::parse_cfs_quota("200000\n", "100000\n") == 2.0);
  CHECK_FALSE(jobs::detail::parse_cfs_quota("-1\n", "100000\n"));
  CHECK_FALSE(jobs::detail::parse_cfs_quota("x", "100000"));
}

TEST_CASE("cgroup v2: the smallest cpu.max of the process's cgroup and its ancestors") {
  temp_dir t;
  auto root = t.path / "sys/fs/cgroup";
  put(root / "cpu.max", "max 100000\n");  // the root has none in practice; ignored anyway
  put(root / "kubepods/cpu.max", "400000 100000\n");
  put(root / "kubepods/pod1/cpu.max", "150000 100000\n");
  put(root / "kubepods/pod1/c1/cpu.max", "max 100000\n");
  put(root / "kubepods/pod1/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n");
  cgroup_cpu c(v2_mounts, "0::/kubepods/pod1/c1\n", t.path.string());
  REQUIRE(c.limit_cores());
  CHECK(*c.limit_cores() == 1.5);
  REQUIRE(c.usage());
  CHECK(*c.usage() == 2500ms);  // the limited cgroup's (the pod's), not the container's

  SUBCASE("no limit anywhere: none, and no usage") {
    cgroup_cpu none(v2_mounts, "0::/elsewhere\n", t.path.string());
    CHECK_FALSE(none.limit_cores());
    CHECK_FALSE(none.usage());
  }
  SUBCASE("a cgroup namespace: the process's cgroup is the mount's root") {
    temp_dir ns;
    put(ns.path / "sys/fs/cgroup/cpu.max", "200000 100000\n");
    put(ns.path / "sys/fs/cgroup/cpu.stat", "usage_usec 7\n");
    cgroup_cpu in(v2_mounts, "0::/\n", ns.path.string());
    CHECK(in.limit_cores() == 2.0);
    CHECK(in.usage() == 7us);
  }
}

TEST_CASE("cgroup v1: cfs quota over period, usage from cpuacct") {
  SUBCASE("cpu and cpuacct mounted apart (a hybrid host)") {
    temp_dir t;
    auto fsr = t.path / "sys/fs/cgroup";
    put(fsr / "cpu/cpu.cfs_quota_us", "-1\n");
    put(fsr / "cpu/cpu.cfs_period_us", "100000\n");
    put(fsr / "cpu/jobs/cpu.cfs_quota_us", "50000\n");
    put(fsr / "cpu/jobs/cpu.cfs_period_us", "100000\n");
    put(fsr / "cpuacct/jobs/cpuacct.usage", "123456789\n");
    cgroup_cpu c(v1_split_mounts, "2:cpuacct:/jobs\n1:cpu:/jobs\n0::/\n", t.path.string());
    CHECK(c.limit_cores() == 0.5);
    CHECK(c.usage() == 123456789ns);
  }
  SUBCASE("mounted together, the mount's root the container's own cgroup (no cgroup namespace)") {
    temp_dir t;
    auto dir = t.path / "sys/fs/cgroup/cpu,cpuacct";
    put(dir / "cpu.cfs_quota_us", "300000\n");
    put(dir / "cpu.cfs_period_us", "100000\n");
    put(dir / "cpuacct.usage", "42\n");
    cgroup_cpu c(v1_joint_mounts, "1:cpu,cpuacct:/docker/abc\n", t.path.string());
    CHECK(c.limit_cores() == 3.0);
    CHECK(c.usage() == 42ns);
    // Another container's path is not under this mount's root.
    cgroup_cpu other(v1_joint_mounts, "1:cpu,cpuacct:/docker/abcd\n", t.path.string());
    CHECK_FALSE(other.limit_cores());
  }
}

TEST_CASE("a limit caps the usable CPUs and makes the machine busy by the cgroup's usage") {
  CHECK(jobs::detail::usable_cpus(0.5) == 0.5);
  CHECK(jobs::detail::usable_cpus(100000.0) == jobs::detail::usable_cpus(std::nullopt));
  CHECK(jobs::detail::usable_cpus(std::nullopt) >= 1);

  temp_dir t;
  auto dir = t.path / "sys/fs/cgroup/cpu,cpuacct";
  put(dir / "cpu.cfs_quota_us", "150000\n");
  put(dir / "cpu.cfs_period_us", "100000\n");
  put(dir / "cpuacct.usage", "1000000000\n");
  cgroup_cpu c(v1_joint_mounts, "1:cpu,cpuacct:/docker/abc\n", t.path.string());
  jobs::detail::machine_meter m(&c);
  auto t0 = jobs::detail::steady_time{} + 1h;
  m.busy_share(t0);
  // 400 ms of CPU in 200 ms of a 1.5-CPU limit (a burst): all of it, no more.
  put(dir / "cpuacct.usage", "1400000000\n");
  CHECK(m.busy_share(t0 + 200ms) == 1.0);
  // 150 ms in 200 ms: half; the host's share (/proc/stat) may add to it.
  put(dir / "cpuacct.usage", "1550000000\n");
  CHECK(m.busy_share(t0 + 400ms) >= doctest::Approx(0.5));

  // A round held under a 1.5-CPU limit: 2 cores' worth of handlers, busy from 1.0.
  jobs::detail::round_hold h(1.5, 50ms);
  CHECK(h.cores() == 2);
  CHECK(h.hold(t0, 3, 16, 5, 1.1));
  CHECK_FALSE(h.hold(t0 + 1ms, 3, 16, 5, 0.9));
  jobs::detail::round_hold half(0.5, 50ms);
  CHECK(half.hold(t0, 1, 8, 3, 0.3));
  CHECK_FALSE(half.hold(t0 + 1ms, 1, 8, 3, 0.2));
}

TEST_CASE("under a real quota (where this process may make a cgroup)") {
  // The cpu controller's writable hierarchy: cgroup v1's `cpu` mount, or v2
  // where the root offers the cpu controller to its children.
  auto mounts = jobs::detail::parse_cgroup_mounts(slurp("/proc/self/mountinfo"));
  fs::path base, acct;  // acct: v1's cpuacct mounted apart from cpu
  bool v2 = false;
  auto names = [](const jobs::detail::cgroup_mount& m, const char* c) {
    return std::find(m.controllers.begin(), m.controllers.end(), c) != m.controllers.end();
  };
  for (const auto& m : mounts) {
    if (!m.v2 && names(m, "cpu") && m.root == "/") base = m.mount_point;
    if (!m.v2 && names(m, "cpuacct") && !names(m, "cpu") && m.root == "/") acct = m.mount_point;
    std::istringstream offered(slurp(fs::path(m.mount_point) / "cgroup.subtree_control"));
    bool v2_cpu = false;
    for (std::string c; offered >> c;) v2_cpu = v2_cpu || c == "cpu";
    if (m.v2 && base.empty() && m.root == "/" && v2_cpu) {
      base = m.mount_point;
      v2 = true;
    }
  }
  auto name = "jobs-cgroup-test-" + std::to_string(getpid());
  auto dir = base / name;
  std::error_code ec;
  if (base.empty() || geteuid() != 0 || !fs::create_directory(dir, ec)) {
    MESSAGE("no writable cgroup cpu hierarchy here: the quota is checked on laid-out trees only");
    return;
  }
  // The same cgroup in cpuacct's hierarchy too, as container runtimes make it.
  if (!v2 && !acct.empty() && !fs::create_directory(acct / name, ec)) acct.clear();
  if (v2)
    std::ofstream(dir / "cpu.max") << "50000 100000\n";
  else
    std::ofstream(dir / "cpu.cfs_quota_us") << "50000\n";

  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    // Once the parent moved us, report what we see.
    for (int i = 0; i < 200; ++i) {
      cgroup_cpu c;
      if (c.limit_cores()) {
        auto text = std::to_string(*c.limit_cores()) + " " +
                    std::to_string(jobs::detail::usable_cpus(c.limit_cores())) + " " +
                    (c.usage() ? "usage" : "none");
        (void)!write(fds[1], text.data(), text.size());
        _exit(0);
      }
      usleep(10000);
    }
    _exit(1);
  }
  close(fds[1]);
  if (!v2 && !acct.empty()) std::ofstream(acct / name / "cgroup.procs") << child << "\n";
  std::ofstream(dir / "cgroup.procs") << child << "\n";
  std::string got;
  char buf[128];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  fs::remove(dir, ec);
  if (!v2 && !acct.empty()) fs::remove(acct / name, ec);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(got == "0.500000 0.500000 usage");
}
