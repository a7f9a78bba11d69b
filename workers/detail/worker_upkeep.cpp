// The coordinator's upkeep between rounds: leases, cancels, timeouts and
// gauges (workers/detail/worker_impl.hpp).
#include "common/log.hpp"
#include "workers/detail/worker_impl.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace jobs {

void worker::impl::renew_leases() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_lease_renewal || running.empty()) return;
  std::vector<std::string> ids;
  for (auto& [id, j] : running.jobs()) ids.push_back(id);
  renewal_failed = true;  // until it lands
  auto r = with_db([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = extend_leases(tx, ids, o().worker_id, o().lease);
    tx.commit();
    return r;
  });
  renewal_failed = false;
  // After the call: a reconnect in it asks for a renewal at once.
  next_lease_renewal = now + o().lease / 3;
  // Normally known from NOTIFY already; this catches the ones missed.
  cancel_requests.insert(cancel_requests.end(), r.cancel_requested.begin(),
                         r.cancel_requested.end());
  // Not extended: the lease ran out (this worker frozen, or cut off from
  // PostgreSQL) and the job was queued again or taken over. What its handler
  // returns will not be recorded, so it is asked to stop now rather than run
  // on beside the job's next attempt.
  std::unordered_set<std::string> extended(r.extended.begin(), r.extended.end());
  for (const auto& id : ids)
    if (!extended.contains(id) && running.lose(id, now))
      log_warn("lease lost: the job was taken from this worker; stopping its handler",
               {{"job_id", id}, {"attempt", running.find(id)->job.attempt}});
}

void worker::impl::take_cancel_requests() {
  if (db && listener) db->get_notifs();  // non-blocking
  auto now = std::chrono::steady_clock::now();
  for (const auto& id : cancel_requests)
    if (running.cancel(id, now))
      log_info("cancel requested; stopping the handler", {{"job_id", id}});
  cancel_requests.clear();
}

bool worker::impl::returned(const detail::in_hand& j) const {
  return std::any_of(finished.begin(), finished.end(), [&](const detail::finished_job& f) {
    return f.job.id == j.job.id && f.job.claim == j.job.claim;
  });
}

void worker::impl::stop_overdue() {
  collect_finished();  // a handler that just returned keeps its outcome
  auto now = std::chrono::steady_clock::now();
  // A handler that returned in time has its outcome in `finished`, which a
  // round that failed has not written yet: the next round writes it, not
  // the timeout (nor is it a timeout to report).
  auto returned = [this](const detail::in_hand& j) { return this->returned(j); };
  for (const auto& id : running.expire(now, returned)) {
    ++w.stats_.timed_out;
    log_warn("job timed out; stopping the handler",
             {{"job_id", id}, {"timeout_ms", running.find(id)->timeout.count()}});
  }
  auto overdue = running.overdue(now);
  std::erase_if(overdue, returned);
  if (overdue.empty()) return;
  std::vector<job_outcome> outcomes;
  for (const auto& j : overdue) {
    if (j.why == detail::stop_reason::cancel)
      outcomes.push_back({j.job.id, j.job.attempt, job_state::cancelled, "",
                          fmt::format("cancelled; the handler did not stop within {} ms",
                                      o().cancel_grace.count()),
                          ""});
    else if (j.why == detail::stop_reason::shutdown)
      outcomes.push_back(handed_back(j.job));
    else if (j.why == detail::stop_reason::lost)
      outcomes.push_back(lease_lost(j.job));
    else
      outcomes.push_back(outcome_of(j.job, handler_error::retryable(detail::timed_out(j.timeout))));
  }
  int tries = 0;
  auto landed = with_db([&](pqxx::connection& c) {
    ++tries;
    pqxx::work tx(c);
    auto r = complete_jobs(tx, outcomes, o().worker_id);
    tx.commit();
    return r;
  });
  std::vector<uint64_t> acks;
  for (std::size_t i = 0; i < overdue.size(); ++i) {
    bool recorded = std::find(landed.begin(), landed.end(), outcomes[i].id) != landed.end();
    log_warn(
        "handler did not stop in time; written off, its thread stays busy until it returns",
        {{"job_id", outcomes[i].id},
         {"recorded", recorded    ? std::string(to_string(outcomes[i].state))
                      : tries > 1 ? std::string("unconfirmed: sent again on a new connection")
                                  : std::string("nothing: the job was taken from this worker")}});
    if (auto* j = running.find(overdue[i].job.id)) release(*j, recorded, acks);
    if (recorded) ended(overdue[i], outcomes[i].state);
    running.write_off(overdue[i].job.id);
    if (!recorded && tries == 1)
      lost_attempt(outcomes[i].attempt, outcomes[i].id, overdue[i].job.trace_id,
                   to_string(outcomes[i].state));
    else if (recorded && outcomes[i].state == job_state::cancelled)
      ++w.stats_.cancelled;
  }
  after_commit([&](consumer& c) { c.ack_all(std::move(acks)); });
  broker_check();
}

void worker::impl::gauge() {
  if (auto* m = o().metrics) {
    m->in_flight.with({o().queue}).set(static_cast<double>(running.size()));
    double open = db && db->is_open() ? 1 : 0;
    m->pools.set("worker", open, open, 0);
  }
}

}  // namespace jobs
