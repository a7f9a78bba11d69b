// The submitter's bookkeeping between group commits: settled publish
// batches, withdrawals, and the sweep of expired idempotency keys
// (api/submitter.hpp).
#include "api/submitter.hpp"
#include "common/db.hpp"
#include "common/log.hpp"

#include <algorithm>

namespace jobs {

namespace {
// A withdrawn job goes with its events, a scheduled one's submission
// (job_events has no foreign key to cascade from). Queued, or scheduled and
// never started (a scheduled submission whose commit timed out).
constexpr const char* undo_sql = R"(
  WITH gone AS (
    DELETE FROM jobs
    WHERE id = ANY($1::uuid[]) AND (state = 'queued' OR state = 'scheduled' AND started_at IS NULL)
    RETURNING id)
  DELETE FROM job_events WHERE job_id IN (SELECT id FROM gone))";

// Expired keys are freed on use anyway; the sweep only keeps the key index
// small, so once a minute is plenty (a short TTL, as in tests, goes faster).
std::chrono::milliseconds sweep_interval(std::chrono::milliseconds ttl) {
  using std::chrono::milliseconds;
  return std::clamp<milliseconds>(ttl / 2, milliseconds(100), milliseconds(60000));
}
}  // namespace

void submitter::sweep_keys() {
  int swept = 0;
  try {
    swept = with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          int n = sweep_idempotency_keys(w, idempotency_ttl_, idempotency_limits::sweep_batch);
          w.commit();
          return n;
        },
        pg_connect_hot);
  } catch (const std::exception& e) {
    log_warn("cannot sweep expired idempotency keys", {{"error", e.what()}});
    db_.reset();
  }
  if (swept > 0) log_debug("expired idempotency keys cleared", {{"keys", swept}});
  // A full batch: more are due, go on after the next round of submissions.
  auto now = std::chrono::steady_clock::now();
  next_sweep_ =
      swept == idempotency_limits::sweep_batch ? now : now + sweep_interval(idempotency_ttl_);
}

void submitter::settle_one(std::int64_t batch) {
  auto it = pending_.find(batch);
  if (it == pending_.end() || --it->second > 0) return;
  pending_.erase(it);
  settled_.push_back(batch);
}

void submitter::settle(std::vector<std::int64_t>& batches) {
  if (batches.empty()) return;
  // Bookkeeping only: if it fails, the batches stay, and the recovery
  // publishes their jobs still queued once more; workers drop the duplicates.
  try {
    with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          settle_publish_batches(w, batches);
          w.commit();
          return 0;
        },
        pg_connect_hot);
  } catch (const std::exception& e) {
    log_warn("cannot settle publish batches", {{"error", e.what()}});
    db_.reset();
  }
  batches.clear();
}

bool submitter::withdrawing(const std::string& id) const {
  return std::any_of(withdraw_again_.begin(), withdraw_again_.end(),
                     [&](const refused& f) { return f.id == id; });
}

void submitter::undo(std::vector<refused>& failed) {
  std::vector<std::string> ids;
  for (const auto& f : failed) ids.push_back(f.id);
  bool undone = false;
  try {
    with_reconnect(
        db_, pg_url_,
        [&](pqxx::connection& c) {
          pqxx::work w(c);
          w.exec_params(undo_sql, uuid_array(ids));
          w.commit();
          return 0;
        },
        pg_connect_hot);
    undone = true;
  } catch (const std::exception& e) {
    // Tried again, backing off, until it lands: the clients were told 503.
    // Their batch stays unsettled meanwhile; should the database stay away
    // past its deadline (publish_grace), the recovery may publish them first.
    log_error("cannot withdraw jobs answered 503; retrying",
              {{"error", e.what()},
               {"jobs", static_cast<std::int64_t>(failed.size())},
               {"retry_ms", static_cast<std::int64_t>(withdraw_backoff_.count())}});
    db_.reset();
  }
  if (undone) {
    withdraw_backoff_ = withdraw_backoff_min;
  } else {
    next_withdraw_ = std::chrono::steady_clock::now() + withdraw_backoff_;
    withdraw_backoff_ = std::min(withdraw_backoff_ * 2, withdraw_backoff_max);
  }
  {
    std::lock_guard lk(mu_);
    if (undone)
      for (const auto& f : failed) settle_one(f.batch);
  }
  for (auto& f : failed) {
    if (f.done)  // none for a job withdrawn after its commit timed out or was in doubt
      std::exchange(f.done, nullptr)(make_problem(
          503, "unavailable", "the message broker did not confirm the job; retry later"));
    if (!undone) withdraw_again_.push_back(std::move(f));
  }
}

}  // namespace jobs
