#pragma once
// The tenants' webhook endpoints, as the worker reads them from PostgreSQL
// (table webhook_endpoints, schemas/migrations/0005_webhooks.sql): signing
// secrets, an optional retry schedule, and the circuit breaker's state,
// shared by every worker process.
//
// Circuit breaker: each retryable failure of a delivery adds one to the
// endpoint's consecutive_failures; at `threshold` the endpoint is paused
// until now + `cooldown` (each further failure extends the pause). While
// paused, its jobs are snoozed until the pause ends: they wait, their
// attempts not counted. When the pause ends the breaker is half-open: one
// delivery, the trial, takes a lease (trial_until: its request's timeouts
// and a second) and goes out alone; the endpoint's other jobs snooze until
// the lease ends. The trial's outcome decides:
//   success            the breaker closes (failures 0, no pause): the
//                      success's commit hook resets it and, in the same
//                      transaction, makes due the jobs waiting for the trial
//                      or for the pause before it
//   a 4xx answer       the same, by the writer (the endpoint is up), though
//                      the job is dead
//   retryable failure  paused again for `cooldown`; the jobs that waited
//                      for the trial or the pause now wait for the new pause
//   never sent         (its address refused) the lease is given back and one
//                      waiting job made due, which becomes the next trial
//   stopped            (a cancel, the job's timeout, the worker stopping) it
//                      ends with its lease, as a trial whose worker died
// Jobs waiting on the breaker snooze until exactly trial_until or
// paused_until (both whole milliseconds), so that the statements ending
// them find them through the jobs_due index. A job that read the state but
// commits its wait after it changed is not there yet: the change is applied
// to such jobs again 1 s and 5 s later (made due, or waiting for the pause
// in force); one later still waits for its time.
// Every time is compared in PostgreSQL's clock or converted on reading to
// this process's steady clock: the clocks of the worker and of the database
// may differ.
//
// An endpoint found is cached for `cache_ttl` per process, with no
// invalidation: a change (a PUT's new secrets or schedule, a deletion, the
// breaker's state from other processes) is seen within `cache_ttl`. Neither
// a miss nor an endpoint paused or in a trial is cached: find() returns
// those only after reading PostgreSQL in that call, so a job made due by the
// end of a trial never finds the trial still running. Failures and given-back
// trials are written by a background thread.
//
// Thread-safety: all members may be called from any thread.

#include "common/db.hpp"
#include "workers/webhooks/policy.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace jobs::webhooks {

/// A moment of the breaker read from PostgreSQL: `at` in PostgreSQL's clock
/// (to snooze a job until then: the scheduler compares run_at with its
/// now()), `local` the same moment by this process's steady clock.
struct breaker_time {
  std::chrono::system_clock::time_point at;
  std::chrono::steady_clock::time_point local;
  bool passed(std::chrono::steady_clock::time_point now) const { return now >= local; }
};

struct endpoint {
  std::vector<std::string> keys;  ///< decoded signing keys, 1 or 2 (rotation)
  std::optional<retry_schedule> schedule;
  int consecutive_failures = 0;
  std::optional<breaker_time> paused_until;      ///< set only while paused when read
  std::optional<breaker_time> trial_until;       ///< set only while a trial runs when read
  std::chrono::system_clock::time_point db_now;  ///< PostgreSQL's clock when read
};

/// The breaker's state as the endpoint's row holds it: the trial's lease and
/// the pause's end (ms since the epoch), the failures.
struct breaker_state {
  std::optional<long long> lease_ms, pause_ms;
  int failures = 0;
  bool operator==(const breaker_state&) const = default;
};

/// What the breaker lets a delivery do.
enum class breaker_gate {
  send,        ///< closed
  wait_pause,  ///< open: snooze until the pause ends
  wait_trial,  ///< half-open with a trial out: snooze until its lease ends
  trial,       ///< half-open, no trial out: ask to be it (endpoint_store::take_trial)
};
breaker_gate gate(const endpoint& ep, int threshold, std::chrono::steady_clock::time_point now);

class endpoint_store {
 public:
  endpoint_store(std::string pg_url, int threshold, std::chrono::milliseconds cooldown,
                 std::chrono::milliseconds cache_ttl = std::chrono::seconds(1));
  ~endpoint_store();
  endpoint_store(const endpoint_store&) = delete;
  endpoint_store& operator=(const endpoint_store&) = delete;

  /// nullopt when the tenant has no such endpoint in PostgreSQL now (read
  /// fresh, never from the cache). Throws pqxx errors.
  std::optional<endpoint> find(const std::string& tenant, const std::string& name);
  /// Takes the trial of a half-open endpoint for `lease` (read fresh): its
  /// lease, or nullopt when the breaker is not half-open with no trial out
  /// any more (call find() again). Throws pqxx errors.
  std::optional<breaker_time> take_trial(const std::string& tenant, const std::string& name,
                                         std::chrono::milliseconds lease);
  /// Counts a retryable failure (asynchronously); one at the threshold ends
  /// a trial, and the jobs of `queue` waiting for it wait for the new pause.
  void record_failure(const std::string& tenant, const std::string& name, const std::string& queue);
  /// Closes the breaker as reset() does, asynchronously: for a trial's
  /// answer that is no success but no failure of the endpoint either (a 4xx:
  /// the endpoint is up), and for reset() when the row is held; then only if
  /// the breaker is still as `unchanged_since` says (another change, such as
  /// a failure elsewhere, is newer; a PUT of secrets is none).
  void reset_later(const std::string& tenant, const std::string& name, const std::string& queue,
                   std::optional<breaker_state> unchanged_since = std::nullopt);
  /// Ends the trial holding `lease` without a verdict (asynchronously): the
  /// lease is given back and one job waiting for it is made due.
  void release_trial(const std::string& tenant, const std::string& name, const std::string& queue,
                     breaker_time lease);
  /// Closes the breaker, in a success's commit hook: the endpoint reset,
  /// its jobs of `queue` waiting for a trial or a pause made due (and again
  /// later). A row another transaction holds is left to reset_later().
  void reset(pqxx::transaction_base& tx, const std::string& tenant, const std::string& name,
             const std::string& queue);
  int threshold() const noexcept { return threshold_; }

 private:
  struct cached {
    endpoint ep;
    std::chrono::steady_clock::time_point until;
  };
  std::string url_;
  int threshold_;
  std::chrono::milliseconds cooldown_, ttl_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::pair<std::string, std::string>, cached> cache_;
  // The later passes' timers, on a thread of their own. Before the writer,
  // which outlives them: destroyed first, it runs what is queued, which may
  // set a timer (on the stopped io_context, never to fire).
  boost::asio::io_context timer_ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> timer_work_{
      timer_ioc_.get_executor()};
  std::thread timer_thread_;
  db_pool writer_;

  /// The breaker's change again, 1 s and 5 s on, for the jobs whose wait
  /// for the lease or the pause (ms since the epoch) was committed after it.
  void settle_later(const std::string& tenant, const std::string& name, const std::string& queue,
                    std::optional<long long> lease, std::optional<long long> pause);
};

}  // namespace jobs::webhooks
