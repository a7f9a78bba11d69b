#include "workers/detail/in_flight.hpp"

namespace jobs::detail {

stop_flag in_flight::start(const claimed_job& j, uint64_t tag,
                           std::chrono::milliseconds default_timeout, time_point now, bool async) {
  in_hand h;
  h.async = async;
  h.job = j;
  h.job.payload_json.clear();  // may be large, and is not needed here
  h.tag = tag;
  h.timeout = j.timeout_ms > 0 ? std::chrono::milliseconds(j.timeout_ms) : default_timeout;
  h.deadline = now + h.timeout;
  h.flag = std::make_shared<std::atomic<bool>>(false);
  auto flag = h.flag;
  jobs_.insert_or_assign(j.id, std::move(h));
  return flag;
}

in_hand* in_flight::find(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

void in_flight::stop(in_hand& j, stop_reason why, time_point now) {
  // A cancel after a timeout keeps the timeout's grace: the handler has
  // been asked to stop since then.
  if (j.why == stop_reason::none) j.grace_until = now + grace_;
  j.why = why;
  j.flag->store(true, std::memory_order_relaxed);
}

bool in_flight::cancel(const std::string& id, time_point now) {
  auto* j = find(id);
  if (!j || j->why == stop_reason::cancel) return false;
  stop(*j, stop_reason::cancel, now);
  return true;
}

bool in_flight::lose(const std::string& id, time_point now) {
  auto* j = find(id);
  if (!j || j->why == stop_reason::lost) return false;
  stop(*j, stop_reason::lost, now);
  return true;
}

std::vector<std::string> in_flight::expire(time_point now,
                                           const std::function<bool(const in_hand&)>& returned) {
  std::vector<std::string> out;
  for (auto& [id, j] : jobs_) {
    if (j.why != stop_reason::none || now < j.deadline || (returned && returned(j))) continue;
    stop(j, stop_reason::timeout, now);
    out.push_back(id);
  }
  return out;
}

std::vector<in_hand> in_flight::overdue(time_point now) const {
  std::vector<in_hand> out;
  for (const auto& [id, j] : jobs_)
    if (j.why != stop_reason::none && now >= j.grace_until) out.push_back(j);
  return out;
}

void in_flight::write_off(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  written_off_.emplace(std::pair{id, it->second.job.claim}, it->second.async);
  jobs_.erase(it);
}

bool in_flight::discard(const std::string& id, std::uint64_t claim) {
  return written_off_.erase({id, claim}) > 0;
}

std::size_t in_flight::busy(bool async) const {
  std::size_t n = 0;
  for (const auto& [id, j] : jobs_) n += j.async == async;
  for (const auto& [k, a] : written_off_) n += a == async;
  return n;
}

void in_flight::stop_all(time_point now, const std::function<bool(const in_hand&)>& returned) {
  for (auto& [id, j] : jobs_)
    if (j.why == stop_reason::none && !(returned && returned(j)))
      stop(j, stop_reason::shutdown, now);
}

}  // namespace jobs::detail
