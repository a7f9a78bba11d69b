#include "common/detail/machine_pace.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>

namespace jobs::detail {

std::optional<cpu_ticks> parse_cpu_ticks(std::string_view line) {
  if (!line.starts_with("cpu ")) return std::nullopt;
  line.remove_prefix(4);
  cpu_ticks t;
  int field = 0;
  for (;;) {
    auto start = line.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc{}) return std::nullopt;
    line.remove_prefix(static_cast<std::size_t>(end - line.data()));
    if (!line.empty() && line.front() != ' ' && line.front() != '\n') return std::nullopt;
    // user nice system idle iowait irq softirq steal, then guest and
    // guest_nice, which user and nice already count.
    if (field < 8) {
      t.all += v;
      if (field != 3 && field != 4) t.busy += v;
      if (field == 7) t.steal = v;
    }
    ++field;
  }
  if (field < 4) return std::nullopt;
  return t;
}

double machine_meter::busy_share(steady_time now) {
  if (at_ != steady_time{} && now - at_ < std::chrono::milliseconds(100)) return share_;
  std::ifstream in("/proc/stat");
  std::string line;
  std::optional<cpu_ticks> t;
  if (std::getline(in, line)) t = parse_cpu_ticks(line);
  auto used = limit_ ? limit_->usage() : std::nullopt;
  double share = 0;
  if (t && last_ && t->all > last_->all && t->busy >= last_->busy)
    share = static_cast<double>(t->busy - last_->busy) / static_cast<double>(t->all - last_->all);
  if (used && used_ && *used >= *used_ && now > at_)
    share =
        std::max(share, std::chrono::duration<double>(*used - *used_) /
                            (std::chrono::duration<double>(now - at_) * *limit_->limit_cores()));
  at_ = now;
  last_ = t;
  used_ = used;
  return share_ = std::min(1.0, share);
}

bool round_pace::wait(steady_time now, std::size_t jobs, std::size_t slots, double machine_busy) {
  waiting_ = machine_busy >= busy_share_ && within_gap(now, jobs, slots);
  return waiting_;
}

bool round_pace::within_gap(steady_time now, std::size_t jobs, std::size_t slots) const {
  return gap_.count() > 0 && jobs * 4 < slots && last_ != steady_time{} && now - last_ < gap_;
}

int round_pace::wait_ms(steady_time now, int idle_ms) const {
  if (!waiting_) return idle_ms;
  std::chrono::duration<double, std::milli> left = last_ + gap_ - now;
  return std::clamp(static_cast<int>(std::ceil(left.count())), 0, idle_ms);
}

}  // namespace jobs::detail
