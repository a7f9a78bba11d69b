#pragma once
// The C++ handler interface: how a job type's code is plugged into a worker.
//
// A handler gets the job's payload and returns either a JSON result or a
// classified error. The worker turns the outcome into a state transition:
//   result              -> succeeded (the result is stored with the job)
//   error::retryable    -> failed, retried with backoff until max_attempts, then dead
//   error::permanent    -> dead at once (bad input that will never work)
//   error::snooze       -> back to scheduled at `snooze_until`, attempt not counted
//
// Handlers run on the worker's handler threads, several at once: a handler
// must be thread-safe and must watch `ctx.stop_requested()` in long loops.
//
// Cancellation is cooperative. stop_requested() turns true when a client
// cancels the running job, when the job passes its execution timeout, or
// when the worker's drain deadline passes on shutdown. The handler should
// then return soon, with an error (any kind): the worker records the attempt
// as cancelled, or as failed "timed out" (retried like any retryable error).
// A result returned anyway means the work was done: the job succeeds. A
// handler that has not returned within JOBS_WORKER_CANCEL_GRACE_MS is
// written off: the job is recorded cancelled / timed out without it, its
// eventual result is discarded, and its thread stays busy (one handler
// thread fewer) until it returns. There is no way to kill a thread safely.
// Execution is at least once (a worker may die after the handler ran and
// before the outcome committed), so a handler with side effects outside
// PostgreSQL must be idempotent by job id (see README, "Guarantees").
//
// Async handlers (add_async) are for work that waits on the network, many
// jobs at once without a thread each: the handler starts the work (on a
// handler thread; it may block only briefly) and returns; later, from any
// thread, it calls the `completion` once with the outcome. `ctx` and what
// it views stay valid until then; on_success_commit must be called before
// it. The worker counts async jobs against JOBS_WORKER_ASYNC_INFLIGHT, not
// against its handler threads. A stop request is seen through
// ctx.stop_requested() as for any handler: the async work must poll it and
// complete soon (e.g. by cancelling its socket).
//
// Register handlers by job type in a `handler_registry` before the worker
// starts; the registry is read-only afterwards.

#include <boost/json/value.hpp>
#include <pqxx/transaction_base>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace jobs {

/// Work a handler defers to the transaction that records its success.
using commit_hook = std::function<void(pqxx::transaction_base&)>;

struct job_context {
  std::string_view id;
  std::string_view tenant;
  std::string_view queue;
  std::string_view type;
  const boost::json::value& payload;
  int attempt = 1;                            ///< 1 for the first attempt
  const std::atomic<bool>* cancel = nullptr;  ///< this job's stop flag (stop_requested)

  std::vector<commit_hook>* hooks = nullptr;

  bool stop_requested() const noexcept { return cancel && cancel->load(std::memory_order_relaxed); }

  /// Runs `fn` inside the PostgreSQL transaction that records this attempt's
  /// success, and only if that outcome lands. Writes made there happen
  /// exactly once per job, even when the handler itself runs again after a
  /// crash (at-least-once execution, exactly-once effects). If `fn` throws,
  /// its writes are rolled back and the attempt fails (retryable).
  void on_success_commit(commit_hook fn) const {
    if (hooks) hooks->push_back(std::move(fn));
  }
};

struct handler_error {
  enum class kind { retryable, permanent, snooze };
  kind what = kind::retryable;
  std::string message;
  std::chrono::system_clock::time_point snooze_until{};
  std::optional<std::chrono::system_clock::time_point> retry_at;  ///< retryable: instead of backoff

  static handler_error retryable(std::string m) { return {kind::retryable, std::move(m), {}}; }
  static handler_error permanent(std::string m) { return {kind::permanent, std::move(m), {}}; }
  /// Retryable, run again at `at` (e.g. a Retry-After) rather than after the backoff.
  static handler_error retryable_at(std::string m, std::chrono::system_clock::time_point at) {
    return {kind::retryable, std::move(m), {}, at};
  }
  /// Back to scheduled at `until`, the attempt not counted.
  static handler_error snooze(std::string m, std::chrono::system_clock::time_point until) {
    return {kind::snooze, std::move(m), until};
  }
};

using handler_result = std::variant<boost::json::value, handler_error>;
using handler_fn = std::function<handler_result(const job_context&)>;
/// Reports an async handler's outcome; call once, from any thread (later calls are ignored).
using completion = std::function<void(handler_result)>;
using async_handler_fn = std::function<void(const job_context&, completion)>;

/// Maps (queue, type) to a handler. Not thread-safe while being filled;
/// read-only and safe to share once the worker runs.
class handler_registry {
 public:
  void add(std::string queue, std::string type, handler_fn fn);
  void add_async(std::string queue, std::string type, async_handler_fn fn);
  /// nullptr when no (sync / async) handler is registered for the type.
  const handler_fn* find(std::string_view queue, std::string_view type) const;
  const async_handler_fn* find_async(std::string_view queue, std::string_view type) const;
  /// True when some async handler serves `queue`.
  bool has_async(std::string_view queue) const;

 private:
  std::map<std::pair<std::string, std::string>, handler_fn, std::less<>> handlers_;
  std::map<std::pair<std::string, std::string>, async_handler_fn, std::less<>> async_;
};

/// The processing handlers that ship built in: noop, hash, csv.aggregate.
void register_processing_handlers(handler_registry& r);

/// Handlers for the platform's own fault-injection tests (workers/testing.hpp),
/// registered only when JOBS_TEST_HANDLERS is on.
void register_test_handlers(handler_registry& r);

}  // namespace jobs
