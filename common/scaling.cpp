#include "common/scaling.hpp"

#include "common/config.hpp"
#include "common/job.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace jobs {

scaling_policy policy_defaults(const config& c) {
  scaling_policy p;
  p.target_backlog_per_worker = c.supervisor_target_backlog;
  p.target_drain_s = c.supervisor_target_drain_s;
  p.max_wait_s = c.supervisor_max_wait_s;
  p.scale_up_cooldown = c.supervisor_scale_up_cooldown;
  p.scale_down_cooldown = c.supervisor_scale_down_cooldown;
  return p;
}

int desired_workers(const queue_signal& s, const scaling_policy& p) {
  long backlog = std::max(0L, s.ready) + std::max(0L, s.unacked);
  if (backlog == 0) return p.min_workers;
  double want =
      std::ceil(static_cast<double>(backlog) / std::max(1.0, p.target_backlog_per_worker));
  if (p.target_drain_s > 0 && s.completed_per_s > 0 && s.running > 0) {
    double per_worker = s.completed_per_s / s.running;
    want =
        std::max(want, std::ceil(static_cast<double>(backlog) / (p.target_drain_s * per_worker)));
  }
  if (p.max_wait_s > 0 && s.oldest_waiting_age_s > p.max_wait_s)
    want = std::max(want, static_cast<double>(s.running + 1));
  want = std::clamp(want, static_cast<double>(p.min_workers), static_cast<double>(p.max_workers));
  return static_cast<int>(want);
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

long number(std::string_view v, std::string_view what, long lo, long hi) {
  long n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < lo || n > hi)
    throw pools_error(
        fmt::format("{}: expected an integer in [{}, {}], got {:?}", what, lo, hi, v));
  return n;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto at = s.find(sep);
    out.push_back(trim(s.substr(0, at)));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

}  // namespace

std::vector<pool_spec> parse_pools(std::string_view spec, const scaling_policy& defaults) {
  std::vector<pool_spec> pools;
  std::set<std::string> seen;
  for (auto part : split(spec, ';')) {
    if (part.empty()) continue;
    auto items = split(part, ',');
    auto eq = items[0].find('=');
    if (eq == std::string_view::npos)
      throw pools_error(fmt::format("{:?}: expected queue=MIN..MAX", items[0]));
    pool_spec p{std::string(trim(items[0].substr(0, eq))), defaults};
    if (!is_known_queue(p.queue)) throw pools_error(fmt::format("unknown queue {:?}", p.queue));
    if (!seen.insert(p.queue).second) throw pools_error("queue " + p.queue + " given twice");
    auto range = trim(items[0].substr(eq + 1));
    auto dots = range.find("..");
    if (dots == std::string_view::npos)
      throw pools_error(fmt::format("{}: expected MIN..MAX, got {:?}", p.queue, range));
    p.policy.min_workers =
        static_cast<int>(number(range.substr(0, dots), p.queue + " min", 0, 1024));
    p.policy.max_workers =
        static_cast<int>(number(range.substr(dots + 2), p.queue + " max", 1, 1024));
    if (p.policy.min_workers > p.policy.max_workers)
      throw pools_error(p.queue + ": min is over max");
    for (std::size_t i = 1; i < items.size(); ++i) {
      auto kv = items[i];
      auto e = kv.find('=');
      auto key = trim(kv.substr(0, e));
      auto value = e == std::string_view::npos ? std::string_view{} : trim(kv.substr(e + 1));
      auto what = p.queue + " " + std::string(key);
      if (key == "backlog")
        p.policy.target_backlog_per_worker = static_cast<double>(number(value, what, 1, 1000000));
      else if (key == "drain_s")
        p.policy.target_drain_s = static_cast<double>(number(value, what, 0, 86400));
      else if (key == "max_wait_s")
        p.policy.max_wait_s = static_cast<double>(number(value, what, 0, 86400));
      else if (key == "up_ms")
        p.policy.scale_up_cooldown = std::chrono::milliseconds(number(value, what, 0, 86400000));
      else if (key == "down_ms")
        p.policy.scale_down_cooldown = std::chrono::milliseconds(number(value, what, 0, 86400000));
      else
        throw pools_error(
            fmt::format("{}: unknown setting {:?} (backlog, drain_s, max_wait_s, "
                        "up_ms, down_ms)",
                        p.queue, key));
    }
    pools.push_back(std::move(p));
  }
  if (pools.empty()) throw pools_error("no pools given");
  return pools;
}

}  // namespace jobs
