#pragma once
// The write path of submissions: group commit, then publish with confirms.
//
// Concurrent submissions queue here; one thread writes everything waiting
// (up to `batch_max` rows) in one INSERT and one commit, so N concurrent
// requests cost one round trip and one WAL flush. Committed `queued` jobs go
// to the publisher; each request completes when the broker confirmed its
// message. A `scheduled` job completes at commit (the scheduler publishes it
// when due).
//
// Each group commit records its queued jobs as a publish batch (the outbox,
// common/store.hpp), settled once the broker confirmed them all (in one
// DELETE a second): if this process dies in between, the scheduler's
// recovery publishes those still queued when the batch's deadline passes.
//
// Idempotency keys (common/idempotency.hpp): the INSERT skips a row whose
// key its tenant's job already holds, and the request is answered with that
// job (a replay, 200) or 409 when it was another request. A replay of a job
// whose confirm is still pending in this process (inserted in the same batch
// or an earlier one) answers when the original does: a replay then, or the
// original's 503. Never is a second job recorded or published for a key.
// Expired keys are freed just before a new job takes them, and swept in
// batches of idempotency_limits::sweep_batch (at most every minute, or every
// half TTL when that is shorter).
//
// If the broker refuses or does not confirm in time, the row is deleted
// again (if no worker took it meanwhile) and the request gets 503: a 202 is
// only ever given for a job that is both committed and confirmed.
//
// While the machine's cores are at least 75 % busy, a small group commit
// (fewer jobs queued than a quarter of `batch_max`) begins no sooner than
// `commit_gap` after the one before, and carries what arrived meanwhile
// (detail::round_pace, common/detail/machine_pace.hpp): a commit of a few
// jobs costs PostgreSQL, the broker (one publish batch, one confirm) and the
// worker downstream about as much as one of dozens, and on busy cores that
// cost is queueing for everyone. On an idle machine nothing waits, nor does
// a commit whose oldest submission's deadline (`commit_timeout`) is within
// two gaps, nor one while withdrawals wait to be made (one arriving ends the
// wait).
//
// A submission not committed within `commit_timeout` of its arrival (the
// database frozen or unreachable, with its connection still open) gets 503
// from a watchdog thread while the writer still waits: one still queued is
// dropped unwritten; one in the commit that waits is withdrawn as above once
// that commit lands, instead of being published.
//
// Thread-safety: submit() from any thread; `done` runs on the submitter's,
// the publisher's or the watchdog's thread and must not block.

#include "api/submission.hpp"
#include "common/db.hpp"
#include "common/detail/machine_pace.hpp"
#include "common/idempotency.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/problem.hpp"
#include "common/store.hpp"
#include "queues/publisher.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace jobs {

class submitter {
 public:
  using done_fn = std::function<void(submit_result)>;

  /// `publish_grace`: how long after its commit a job whose confirm never
  /// arrived (the API died) waits before the scheduler's recovery publishes it.
  /// `test_fault` (tests only): "api_crash_after_commit:N" exits the process
  /// right after the Nth group commit, before anything is published;
  /// "api_commit_reply_lost:N" makes the first N commits fail as a connection
  /// lost after they landed would; "api_machine_busy" reads the machine as
  /// fully busy (for `commit_gap`).
  submitter(std::string pg_url, publisher& pub, int batch_max,
            std::chrono::milliseconds publish_grace, std::string test_fault = {},
            std::chrono::milliseconds idempotency_ttl = idempotency_limits::default_ttl,
            metrics::histogram* commit_seconds = nullptr, metrics::histogram* commit_jobs = nullptr,
            std::chrono::milliseconds commit_timeout = std::chrono::seconds(10),
            std::chrono::milliseconds commit_gap = std::chrono::milliseconds(0));
  ~submitter();  ///< finishes what is queued, then joins

  void submit(new_job job, done_fn done);
  /// Queues many jobs at once (a batch request), so they share group commits;
  /// `done[i]` completes `jobs[i]` as submit() would.
  void submit_many(std::vector<new_job> jobs, std::vector<done_fn> done);

 private:
  // A submission's answer, shared by the writer and the watchdog: whichever
  // sets `settled` first ends its commit phase (committed, or timed out).
  struct ticket {
    done_fn done;
    std::chrono::steady_clock::time_point due;  // of its commit
    std::atomic<bool> settled{false};
  };
  using queued_job = std::pair<new_job, std::shared_ptr<ticket>>;

  void enqueue(new_job job, done_fn done, std::chrono::steady_clock::time_point due);  ///< mu_ held
  /// Whether the writer may wait for the commit gap, the machine's load
  /// aside (mu_ held).
  bool may_hold(std::chrono::steady_clock::time_point now) const;
  /// Enough queued that the commit gap does not hold them (round_pace's
  /// quarter of batch_max); mu_ held.
  bool past_gap_wait() const { return queue_.size() * 4 >= static_cast<std::size_t>(batch_max_); }
  void run();
  void watch();
  void write(std::vector<queued_job>& taken);
  struct refused {
    std::string id;
    done_fn done;
    std::int64_t batch;
  };
  void undo(std::vector<refused>& failed);
  /// True when the job was answered 503 and its withdrawal failed: it is
  /// to be withdrawn again (the submitter's thread only).
  bool withdrawing(const std::string& id) const;
  void lose_reply(bool in_transaction);  ///< the test fault api_commit_reply_lost
  void withdraw_late(const std::vector<queued_job>& late, const std::vector<std::string>& inserted,
                     std::vector<key_holder>& holders, std::int64_t publish_batch);
  void settle_one(std::int64_t batch);  ///< with mu_ held
  void settle(std::vector<std::int64_t>& batches);
  void settle_duplicates(std::vector<std::pair<new_job, done_fn>>& batch, std::size_t rows,
                         const std::vector<std::string>& inserted,
                         const std::vector<key_holder>& holders);
  void finish_in_flight(const std::string& id, job_state state, const done_fn& done,
                        submit_result r);
  void sweep_keys();

  std::string pg_url_;
  publisher& pub_;
  int batch_max_;
  std::chrono::milliseconds publish_grace_;
  int crash_after_batches_ = 0;  // tests only; 0: never
  int lose_replies_ = 0;         // tests only: commits whose success is not seen
  int batches_ = 0;
  std::unique_ptr<pqxx::connection> db_;
  plan_refresher plans_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued_job> queue_;
  std::chrono::milliseconds commit_timeout_;
  // The writer's commit in progress, for the watchdog: its tickets (emptied
  // by whichever of the two is done with them first) and the first one's due.
  std::vector<std::shared_ptr<ticket>> in_commit_;
  std::condition_variable watch_cv_;
  bool watch_idle_ = false;           // the watchdog waits with nothing to watch
  std::vector<refused> unconfirmed_;  // to undo
  // The submitter thread's: withdrawals that failed, tried again from
  // next_withdraw_, backing off.
  static constexpr std::chrono::milliseconds withdraw_backoff_min{100}, withdraw_backoff_max{1000};
  std::vector<refused> withdraw_again_;
  std::chrono::steady_clock::time_point next_withdraw_;
  std::chrono::milliseconds withdraw_backoff_ = withdraw_backoff_min;
  std::map<std::int64_t, int> pending_;  // publish batch -> confirms awaited
  std::vector<std::int64_t> settled_;    // batches all confirmed: to delete
  bool stopping_ = false;
  // The writer waits for the commit gap: a submission wakes it only when the
  // queue has grown past what the gap waits for.
  bool holding_ = false;
  bool machine_busy_fault_ = false;  // tests only
  detail::cgroup_cpu cpu_limit_;
  detail::machine_meter machine_{&cpu_limit_};  // the writer thread's, read without mu_
  detail::round_pace pace_;                     // the writer thread's
  std::chrono::milliseconds idempotency_ttl_;
  metrics::histogram* commit_seconds_;                // may be null
  metrics::histogram* commit_jobs_;                   // may be null
  std::chrono::steady_clock::time_point next_sweep_;  // the submitter thread's
  std::mutex in_flight_mu_;                           // not mu_: a done may run where mu_ is held
  // Keyed jobs waiting for their confirm -> the replays waiting for them.
  std::map<std::string, std::vector<done_fn>> in_flight_;
  /// Lines written per commit or per job while PostgreSQL or the broker is away.
  log_sampler unrecorded_log_{std::chrono::seconds(10)};
  log_sampler unconfirmed_log_{std::chrono::seconds(10)};
  std::thread thread_;
  std::thread watchdog_;
};

}  // namespace jobs
