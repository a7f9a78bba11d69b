// A round's one transaction: the outcomes of the handlers that returned,
// then the claims of the messages received (workers/detail/worker_impl.hpp).
// Without commit hooks or tenant caps it is one statement.
#include "common/log.hpp"
#include "workers/detail/outcome.hpp"
#include "workers/detail/worker_impl.hpp"

#include <algorithm>
#include <cstdlib>

namespace jobs {

namespace {
// Errors in the data, not the connection or the database's state: the same
// statement would fail again (data exception, integrity constraint
// violation, program limit exceeded).
bool is_data_error(const pqxx::sql_error& e) {
  auto state = e.sqlstate();
  return state.starts_with("22") || state.starts_with("23") || state.starts_with("54");
}

std::string first_line(std::string_view text) {
  auto line = text.substr(0, text.find('\n'));
  if (line.starts_with("ERROR:")) line.remove_prefix(6);
  while (line.starts_with(' ')) line.remove_prefix(1);
  return std::string(line);
}

// A savepoint set when it is made. libpqxx 6 sends a subtransaction's
// SAVEPOINT with its first exec(), but exec_params() and exec_prepared() go
// to the connection without it: a hook using only those ran outside any
// savepoint, so a hook that failed kept what it had written, and a
// statement of its that failed aborted the whole round.
class savepoint : public pqxx::subtransaction {
 public:
  // namedclass is a virtual base: the most derived class names it.
  savepoint(pqxx::dbtransaction& tx, const std::string& name)
      : pqxx::internal::namedclass("subtransaction", tx.conn().adorn_name(name)),
        pqxx::subtransaction(tx, name) {
    Begin();
  }
};
}  // namespace

worker::impl::claims worker::impl::pick_claims(const std::vector<detail::finished_job>& ending) {
  claims c;
  int free_sync = o().concurrency - static_cast<int>(running.busy(false));
  int free_async = o().async_inflight - static_cast<int>(running.busy(true));
  for (const auto& f : ending)
    if (const auto* j = running.find(f.job.id)) ++(j->async ? free_async : free_sync);
  if ((free_sync <= 0 && free_async <= 0) || waiting.empty() || stopping || paused) return c;
  std::deque<std::pair<delivery, job_message>> later;
  while (!waiting.empty() && (free_sync > 0 || free_async > 0)) {
    auto [d, m] = std::move(waiting.front());
    waiting.pop_front();
    if (auto* run = running.find(m.id)) {
      // Redelivered after we lost the channel, or published again: held
      // until the job ends (release()).
      if (run->tag == 0)
        run->tag = d.tag;
      else
        run->more_tags.push_back(d.tag);
      continue;
    }
    if (c.tags.contains(m.id)) {
      // Twice in one round: the second waits for the first's claim.
      later.emplace_back(std::move(d), std::move(m));
      continue;
    }
    int& free = w.handlers_.find_async(m.queue, m.type) ? free_async : free_sync;
    if (free <= 0) {
      later.emplace_back(std::move(d), std::move(m));
      continue;
    }
    --free;
    c.ids.push_back(m.id);
    c.tags.emplace(m.id, d.tag);
    c.taken.emplace_back(std::move(d), std::move(m));
  }
  for (auto it = later.rbegin(); it != later.rend(); ++it) waiting.push_front(std::move(*it));
  return c;
}

void worker::impl::start_claimed(capped_claim& got, claims& c) {
  auto& tags = c.tags;
  // Over their tenant's cap: scheduled again, so the message may go.
  for (const auto& id : got.deferred) {
    after_commit([&](consumer& c) { c.ack(tags.at(id)); });
    tags.erase(id);
    ++w.stats_.deferred;
  }
  auto now = std::chrono::steady_clock::now();
  // The round's jobs go to the handler threads together (one lock of their
  // queue); a job in `running` always reaches them, even if a later one throws.
  std::vector<detail::handler_pool::queued_job> start;
  start.reserve(got.claimed.size());
  try {
    for (auto& j : got.claimed) {
      j.claim = ++claims_made;
      bool async = w.handlers_.find_async(j.queue, j.type) != nullptr;
      auto stop = running.start(j, tags.at(j.id), o().job_timeout, now, async);
      tags.erase(j.id);
      if (!reclaimed.empty()) reclaimed.erase(j.id);
      ++w.stats_.claimed;
      start.emplace_back(std::move(j), std::move(stop));
    }
  } catch (...) {
    if (!start.empty()) pool.submit(std::move(start));
    throw;
  }
  if (!start.empty()) pool.submit(std::move(start));
  if (tags.empty()) return;
  // Not claimed: finished, cancelled or running elsewhere, and the message
  // goes; or the queue's pause had committed (the claim tests it), and the
  // message stays, unacked, for the resume.
  auto keep = not_to_drop(tags);
  std::vector<std::pair<delivery, job_message>> kept;
  for (auto& t : c.taken) {
    auto tag = tags.find(t.second.id);
    if (tag == tags.end()) continue;  // claimed or deferred
    if (keep.contains(t.second.id)) {
      kept.push_back(std::move(t));
      continue;
    }
    reclaimed.erase(t.second.id);
    after_commit([&](consumer& k) { k.ack(tag->second); });
    ++w.stats_.dropped;
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) waiting.push_front(std::move(*it));
}

std::unordered_set<std::string> worker::impl::not_to_drop(
    const std::unordered_map<std::string, uint64_t>& unclaimed) {
  std::vector<std::string> ids;
  for (const auto& [id, tag] : unclaimed) ids.push_back(id);
  try {
    auto check = with_db([&](pqxx::connection& conn) {
      pqxx::nontransaction n(conn);
      return check_unclaimed(n, o().queue, ids);
    });
    if (check.paused) {
      paused = true;  // no more claims; the loop cancels the consumer (apply_pause)
      pauses.stale();
      return {ids.begin(), ids.end()};
    }
    // Claimable now (the pause lifted since the claim, a lease run out):
    // claimed again once; a job the claim keeps refusing goes.
    std::unordered_set<std::string> keep;
    for (const auto& id : check.claimable)
      if (reclaimed.insert(id).second) keep.insert(id);
    return keep;
  } catch (const std::exception& e) {
    log_warn("could not check jobs the claim did not take; claiming them again",
             {{"error", e.what()}});
    return {ids.begin(), ids.end()};
  }
}

bool worker::impl::hold_round() {
  auto now = std::chrono::steady_clock::now();
  bool may = !stopping && !finished.empty();
  for (const auto& f : finished)
    if (const auto* j = running.find(f.job.id); j && !hold.may_wait(*j, now)) may = false;
  if (!may) {
    hold.release();  // or the loop's wait would end with a hold no longer there
    return false;
  }
  int still_running = static_cast<int>(running.busy(false)) - static_cast<int>(finished.size());
  // Enough finished to be worth a round, and few enough that the rest still
  // outnumber twice the cores (round_hold::hold()).
  int enough =
      std::max(1, std::min(std::max(8, o().concurrency / 8), o().concurrency - 2 * cores()));
  return hold.hold(now, finished.size(), static_cast<std::size_t>(enough), still_running,
                   cpu.busy_cores(now));
}

std::size_t worker::impl::slots() const {
  auto n = static_cast<std::size_t>(o().concurrency);
  if (w.handlers_.has_async(o().queue)) n += static_cast<std::size_t>(o().async_inflight);
  return n;
}

bool worker::impl::pace_round() {
  auto now = std::chrono::steady_clock::now();
  bool may = !stopping;
  for (const auto& f : finished)
    if (const auto* j = running.find(f.job.id);
        j && (j->why != detail::stop_reason::none || j->deadline <= now + pace.gap()))
      may = false;
  std::size_t jobs = finished.size() + (paused ? 0 : waiting.size());
  double busy = 0;
  if (may && jobs > 0)
    busy = o().test_fault == "worker_machine_busy" ? 1.0 : machine.busy_share(now);
  return pace.wait(now, jobs, slots(), busy);
}

void worker::impl::collect_finished() {
  pool.take_finished(finished);
  std::erase_if(finished, [&](const detail::finished_job& f) {
    return running.discard(f.job.id, f.job.claim);  // already recorded without it
  });
}

void worker::impl::cycle() {
  collect_finished();
  if (hold_round()) {
    // Held, not paced: the loop waits for the hold, not for a gap that may
    // be over (which would make it poll without waiting until the hold ends).
    pace.release();
    return;
  }
  if (pace_round()) return;
  auto c = pick_claims(finished);
  if (finished.empty() && c.ids.empty()) return;
  pace.began(std::chrono::steady_clock::now());
  std::vector<job_outcome> outcomes;
  outcomes.reserve(finished.size());
  for (const auto& f : finished) outcomes.push_back(outcome_for(f));
  if (o().test_fault == "worker_unstorable_result")  // a result PostgreSQL will not take
    for (auto& out : outcomes)
      if (out.result_json.find("\"unstorable\"") != std::string::npos)
        out.result_json = "{\"unstorable\":";
  capped_claim got;
  std::vector<std::string> landed;
  std::vector<job_outcome> hooked;  // the outcomes as the hooks left them, when there are hooks
  int tries = 0;
  try {
    got = with_db([&](pqxx::connection& conn) {
      ++tries;
      // Without commit hooks or tenant caps, the round is one statement in
      // its own implicit transaction: one round trip instead of four (BEGIN,
      // completions, claims, COMMIT), each a wait for the database's turn on
      // a busy machine.
      bool hooks = std::any_of(finished.begin(), finished.end(),
                               [](const detail::finished_job& f) { return !f.hooks.empty(); });
      if (!hooks && !o().caps.enabled()) {
        pqxx::nontransaction tx(conn);
        auto round = complete_and_claim(tx, outcomes, c.ids, o().worker_id, o().lease);
        landed = std::move(round.completed);
        return capped_claim{std::move(round.claimed), {}};
      }
      pqxx::work tx(conn);
      // A hook that fails turns its outcome into a failed attempt; sent
      // again on a new connection, the round starts from the handlers'.
      auto& round = hooks ? (hooked = outcomes) : outcomes;
      if (!round.empty()) {
        if (hooks) run_commit_hooks(tx, round);
        landed = complete_jobs(tx, round, o().worker_id);
      }
      auto r = claim_jobs_capped(tx, c.ids, o().worker_id, o().lease, o().caps);
      tx.commit();
      return r;
    });
  } catch (...) {
    for (auto it = c.taken.rbegin(); it != c.taken.rend(); ++it) waiting.push_front(std::move(*it));
    // Sent again after a lost connection: the first may have landed (the
    // one-statement round commits on its own), whatever ended the second.
    if (tries > 1)
      for (const auto& out : outcomes) in_doubt.insert(out.id);
    try {
      throw;
    } catch (const pqxx::sql_error& e) {
      if (outcomes.empty() || !is_data_error(e)) throw;
      log_warn("the database refused a round's outcomes; finding which",
               {{"error", first_line(e.what())}, {"outcomes", outcomes.size()}});
      // None refused alone (the round as a whole, or its claims): as any
      // database error, with the loop's backoff.
      if (!set_aside_unstorable(outcomes)) throw;
      return;
    } catch (const pqxx::transaction_rollback&) {
      // A deadlock or a serialization failure (in libpqxx 6 not an
      // sql_error): the server rolled the round back, nothing landed.
      throw;
    } catch (const pqxx::failure&) {
      // The connection was lost (on the round's one retry too) or its
      // COMMIT went unanswered: the outcomes may have landed, and the next
      // round, sending them again, learns nothing from their not landing.
      for (const auto& out : outcomes) in_doubt.insert(out.id);
      throw;
    }
  }
  if (o().test_fault == "worker_crash_after_commit" && !outcomes.empty()) {
    log_warn("test fault: crashing after the commit, before the acks");
    std::_Exit(70);
  }
  if (o().test_fault == "worker_broker_lost_after_commit" && !fault_done && amqp &&
      !outcomes.empty() && !got.claimed.empty()) {
    log_warn("test fault: broker connection cut after the commit, before the acks");
    fault_done = true;
    amqp->sever();
  }
  if (!hooked.empty()) outcomes = std::move(hooked);
  completed(outcomes, landed, tries > 1);
  start_claimed(got, c);
  broker_check();
}

bool worker::impl::set_aside_unstorable(const std::vector<job_outcome>& outcomes) {
  // A database that refuses every write says so with some of the same
  // codes (wraparound protection is 54000, as a value over a limit is):
  // then nothing is the data's fault. It refuses a transaction id alone.
  with_db([&](pqxx::connection& conn) {
    pqxx::work probe(conn);
    probe.exec("SELECT txid_current()");
    probe.abort();
  });
  // Each in a transaction of its own, rolled back: after an error a
  // transaction takes nothing more, and a savepoint's rollback is one more
  // statement that a failed one may leave unsent.
  std::vector<std::pair<std::size_t, std::string>> refused;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    try {
      with_db([&](pqxx::connection& conn) {
        pqxx::work alone(conn);
        complete_jobs(alone, std::span(&outcomes[i], 1), o().worker_id);
        alone.abort();
      });
    } catch (const pqxx::sql_error& e) {
      if (!is_data_error(e)) throw;
      refused.emplace_back(i, first_line(e.what()));
    }
  }
  for (auto& [i, error] : refused) {
    auto& f = finished[i];
    bool again = !set_aside.insert(f.job.id).second;
    log_error("the database refused a job's outcome; the job ends dead",
              {{"job_id", f.job.id},
               {"attempt", f.job.attempt},
               {"state", std::string(to_string(outcomes[i].state))},
               {"error", error}});
    // A second refusal: the text of the first may have been what it refused.
    f.outcome = handler_error::permanent(
        again ? std::string("the job's outcome could not be stored")
              : "the job's outcome could not be stored: the database refused it (" + error + ")");
    f.hooks.clear();
  }
  return !refused.empty();
}

job_outcome worker::impl::outcome_of(const claimed_job& job, const handler_result& result) {
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  return detail::decide_outcome(job, result, o().retry, u, std::chrono::system_clock::now());
}

job_outcome worker::impl::outcome_for(const detail::finished_job& f) {
  const auto* j = running.find(f.job.id);
  auto why = j ? j->why : detail::stop_reason::none;
  if (why == detail::stop_reason::none || std::holds_alternative<boost::json::value>(f.outcome))
    return outcome_of(f.job, f.outcome);
  if (why == detail::stop_reason::cancel)
    return {f.job.id, f.job.attempt, job_state::cancelled, "", "cancelled while running", ""};
  if (why == detail::stop_reason::shutdown) return handed_back(f.job);
  if (why == detail::stop_reason::lost) return lease_lost(f.job);
  return outcome_of(f.job, handler_error::retryable(detail::timed_out(j->timeout)));
}

job_outcome worker::impl::lease_lost(const claimed_job& job) {
  return outcome_of(job, handler_error::retryable("the job's lease was lost"));
}

job_outcome worker::impl::handed_back(const claimed_job& job) const {
  return {job.id,
          job.attempt,
          job_state::scheduled,
          "",
          fmt::format("the worker stopped ({} ms drain deadline) before the job ended; back to "
                      "the queue, the attempt not counted",
                      o().shutdown.count()),
          format_rfc3339(std::chrono::system_clock::now())};
}

void worker::impl::completed(const std::vector<job_outcome>& outcomes,
                             const std::vector<std::string>& landed, bool retried) {
  std::vector<uint64_t> tags;
  std::unordered_set<std::string> recorded(landed.begin(), landed.end());
  for (const auto& out : outcomes) {
    if (!set_aside.empty()) set_aside.erase(out.id);
    bool doubted = !in_doubt.empty() && in_doubt.erase(out.id) > 0;
    auto* j = running.find(out.id);
    if (!j) continue;
    bool lands = recorded.contains(out.id);
    release(*j, lands, tags);
    if (lands) ended(*j, out.state);
    auto trace = std::move(j->job.trace_id);
    running.erase(out.id);
    if (!lands) {
      // Its messages, sent through the claim again, are dropped if it did land.
      if (retried || doubted)
        log_info("attempt's outcome unconfirmed: the round was sent again on a new connection",
                 {{"job_id", out.id}, {"trace_id", trace}, {"attempt", out.attempt}});
      else
        lost_attempt(out.attempt, out.id, trace, to_string(out.state));
      continue;
    }
    switch (out.state) {
      case job_state::succeeded: ++w.stats_.succeeded; break;
      case job_state::cancelled:
        ++w.stats_.cancelled;
        log_info("job cancelled",
                 {{"job_id", out.id}, {"trace_id", trace}, {"attempt", out.attempt}});
        break;
      case job_state::failed:
        ++w.stats_.failed;
        log_info("attempt failed; retry scheduled", {{"job_id", out.id},
                                                     {"trace_id", trace},
                                                     {"attempt", out.attempt},
                                                     {"error", out.error},
                                                     {"retry_at", out.run_at}});
        break;
      case job_state::dead:
        ++w.stats_.dead;
        log_warn("job dead", {{"job_id", out.id},
                              {"trace_id", trace},
                              {"attempt", out.attempt},
                              {"error", out.error}});
        break;
      default: ++w.stats_.snoozed; break;
    }
  }
  after_commit([&](consumer& c) { c.ack_all(std::move(tags)); });
  finished.clear();
}

void worker::impl::lost_attempt(int attempt, const std::string& id, const std::string& trace,
                                std::string_view outcome) {
  ++w.stats_.lost;
  if (auto* m = o().metrics) m->lost.with({o().queue}).inc();
  log_warn("attempt not recorded: the job was taken from this worker (its lease ran out)",
           {{"job_id", id},
            {"trace_id", trace},
            {"attempt", attempt},
            {"outcome", std::string(outcome)}});
}

void worker::impl::release(detail::in_hand& j, bool landed, std::vector<uint64_t>& acks) {
  auto tags = std::move(j.more_tags);
  j.more_tags.clear();
  if (j.tag != 0) tags.push_back(j.tag);
  j.tag = 0;
  if (landed) {
    acks.insert(acks.end(), tags.begin(), tags.end());
    return;
  }
  for (auto tag : tags) {
    delivery d;
    d.tag = tag;
    waiting.emplace_front(
        std::move(d), job_message{j.job.id, j.job.tenant, j.job.queue, j.job.type, j.job.trace_id});
  }
}

void worker::impl::ended(const detail::in_hand& j, job_state s) {
  if (auto* m = o().metrics) {
    auto started = j.deadline - j.timeout;
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    m->record(j.job.queue, j.job.type, s, took.count());
  }
  if (log_enabled(log_level::debug))
    log_debug("job attempt recorded", {{"job_id", j.job.id},
                                       {"trace_id", j.job.trace_id},
                                       {"attempt", j.job.attempt},
                                       {"state", to_string(s)}});
}

void worker::impl::run_commit_hooks(pqxx::work& tx, std::vector<job_outcome>& outcomes) {
  std::vector<std::size_t> with_hooks;
  std::vector<job_outcome> candidates;
  // Only for a success: a result the worker refused (too large, too deep)
  // makes the job dead, and its hooks must not commit with that.
  for (std::size_t i = 0; i < finished.size(); ++i)
    if (!finished[i].hooks.empty() && outcomes[i].state == job_state::succeeded) {
      with_hooks.push_back(i);
      candidates.push_back(outcomes[i]);
    }
  if (with_hooks.empty()) return;
  auto owned = lock_owned_attempts(tx, candidates, o().worker_id);
  for (auto i : with_hooks) {
    if (std::find(owned.begin(), owned.end(), outcomes[i].id) == owned.end()) continue;
    try {
      savepoint sub(tx, "hook");
      for (auto& hook : finished[i].hooks) hook(sub);
      sub.commit();
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const std::exception& e) {
      outcomes[i] =
          outcome_of(finished[i].job,
                     handler_error::retryable(std::string("commit hook failed: ") + e.what()));
    }
  }
}

}  // namespace jobs
