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
// must be thread-safe and should watch `ctx.stop_requested()` in long loops.
// Execution is at least once (a worker may die after the handler ran and
// before the outcome committed), so a handler with side effects outside
// PostgreSQL must be idempotent by job id (see README, "Guarantees").
//
// Register handlers by job type in a `handler_registry` before the worker
// starts; the registry is read-only afterwards.

#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace jobs {

struct job_context {
  std::string_view id;
  std::string_view tenant;
  std::string_view queue;
  std::string_view type;
  const boost::json::value& payload;
  int attempt = 1;  ///< 1 for the first attempt
  const std::atomic<bool>* cancel = nullptr;

  bool stop_requested() const noexcept { return cancel && cancel->load(std::memory_order_relaxed); }
};

struct handler_error {
  enum class kind { retryable, permanent, snooze };
  kind what = kind::retryable;
  std::string message;
  std::chrono::system_clock::time_point snooze_until{};

  static handler_error retryable(std::string m) { return {kind::retryable, std::move(m), {}}; }
  static handler_error permanent(std::string m) { return {kind::permanent, std::move(m), {}}; }
};

using handler_result = std::variant<boost::json::value, handler_error>;
using handler_fn = std::function<handler_result(const job_context&)>;

/// Maps (queue, type) to a handler. Not thread-safe while being filled;
/// read-only and safe to share once the worker runs.
class handler_registry {
 public:
  void add(std::string queue, std::string type, handler_fn fn);
  /// nullptr when no handler is registered for the type.
  const handler_fn* find(std::string_view queue, std::string_view type) const;

 private:
  std::map<std::pair<std::string, std::string>, handler_fn, std::less<>> handlers_;
};

/// The processing handlers that ship built in: noop, hash, csv.aggregate.
void register_processing_handlers(handler_registry& r);

}  // namespace jobs
