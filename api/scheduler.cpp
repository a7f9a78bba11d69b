#include "api/scheduler.hpp"

#include "common/db.hpp"
#include "common/log.hpp"
#include "common/store.hpp"
#include "queues/message.hpp"

#include <future>
#include <vector>

namespace jobs {

namespace {
// Publishes every job and returns the ids the broker confirmed (pipelined).
std::vector<std::string> publish_all(publisher& pub, const std::vector<due_job>& jobs) {
  std::vector<std::future<bool>> confirms;
  for (const auto& j : jobs) {
    auto done = std::make_shared<std::promise<bool>>();
    confirms.push_back(done->get_future());
    pub.publish(j.queue, j.id, encode_job_message({j.id, j.tenant, j.queue, j.type}),
                [done](bool ok, std::string_view) { done->set_value(ok); });
  }
  std::vector<std::string> ok;
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (confirms[i].get()) ok.push_back(jobs[i].id);
  return ok;
}
}  // namespace

int schedule_round(pqxx::connection& c, publisher& pub) {
  if (!pub.accepting()) return 0;
  // Most rounds find nothing to do: one statement says so, instead of the
  // three transactions below (nine round trips, at the default 200 ms five
  // rounds a second).
  auto todo = pending_round_work(c);
  int work = 0;
  if (todo.due) {
    pqxx::work w(c);
    auto due = lock_due_jobs(w, scheduler_batch);
    auto ok = publish_all(pub, due);
    mark_queued(w, ok);
    w.commit();
    work += static_cast<int>(due.size());
  }
  // The recovery: queued jobs whose confirm never came (the API died between
  // its commit and the broker's confirm) are published again.
  if (todo.unconfirmed) {
    pqxx::work w(c);
    auto unconfirmed = lock_unconfirmed_jobs(w, scheduler_batch);
    auto ok = publish_all(pub, unconfirmed.jobs);
    // Settled only when every job went out; otherwise all once more next round.
    if (ok.size() == unconfirmed.jobs.size()) settle_publish_batches(w, unconfirmed.batches);
    w.commit();
    if (!unconfirmed.jobs.empty())
      log_warn("unconfirmed jobs published again",
               {{"jobs", static_cast<std::int64_t>(ok.size())}});
    work += static_cast<int>(unconfirmed.jobs.size() + unconfirmed.batches.size());
  }
  // The rescuer: jobs whose worker died go back to their queue, or die
  // when no attempt is left. A job stays locked until it is republished.
  if (!todo.lost) return work;
  pqxx::work w(c);
  auto lost = lock_lost_jobs(w, scheduler_batch);
  std::vector<due_job> again;
  std::vector<std::string> buried;
  for (auto& l : lost) {
    if (l.exhausted)
      buried.push_back(l.job.id);
    else
      again.push_back(std::move(l.job));
  }
  auto ok = publish_all(pub, again);
  rescue_lost_jobs(w, ok, job_state::queued);
  rescue_lost_jobs(w, buried, job_state::dead);
  w.commit();
  if (!lost.empty())
    log_warn("jobs of lost workers rescued", {{"requeued", static_cast<std::int64_t>(ok.size())},
                                              {"dead", static_cast<std::int64_t>(buried.size())}});
  return work + static_cast<int>(lost.size());
}

}  // namespace jobs
