#include "workers/detail/round_hold.hpp"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace jobs::detail {

double cpu_meter::busy_cores(steady_time now) {
  if (at_ != steady_time{} && now - at_ < std::chrono::milliseconds(100)) return busy_;
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  auto cpu = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  if (at_ != steady_time{})
    busy_ = std::chrono::duration<double>(cpu - cpu_) / std::chrono::duration<double>(now - at_);
  at_ = now;
  cpu_ = cpu;
  return busy_;
}

double usable_cpus(std::optional<double> limit) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = sched_getaffinity(0, sizeof set, &set) == 0
                  ? CPU_COUNT(&set)
                  : static_cast<int>(std::thread::hardware_concurrency());
  double cpus = std::max(1, cores);
  return limit && *limit > 0 ? std::min(cpus, *limit) : cpus;
}

bool round_hold::hold(steady_time now, std::size_t finished, std::size_t hold_jobs,
                      int still_running, double busy_cores) {
  bool saturated = still_running > 2 * cores() && busy_cores >= std::max(cpus_ - 0.5, cpus_ * 0.5);
  if (finished == 0 || finished >= hold_jobs || !saturated) {
    since_ = {};
    return false;
  }
  if (since_ == steady_time{}) since_ = now;
  if (now - since_ < max_) return true;
  since_ = {};
  return false;
}

int round_hold::wait_ms(steady_time now, int idle_ms) const {
  if (since_ == steady_time{}) return idle_ms;
  std::chrono::duration<double, std::milli> left = since_ + max_ - now;
  return std::clamp(static_cast<int>(std::ceil(left.count())), 0, idle_ms);
}

}  // namespace jobs::detail
