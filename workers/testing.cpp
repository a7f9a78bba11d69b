#include "workers/testing.hpp"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

namespace jobs {

namespace {

constexpr const char* count_sql =
    "INSERT INTO test_handled (job_id, attempt) VALUES ($1::uuid, $2)";

std::int64_t int_member(const boost::json::value& payload, const char* name);

// `result_bytes` in the payload pads the result to about that size.
handler_result succeed_counted(const job_context& ctx) {
  ctx.on_success_commit(
      [id = std::string(ctx.id), attempt = ctx.attempt](pqxx::transaction_base& tx) {
        tx.exec_params(count_sql, id, attempt);
      });
  boost::json::object result{{"ok", true}, {"attempt", ctx.attempt}};
  if (auto pad = int_member(ctx.payload, "result_bytes"); pad > 0)
    result["pad"] = std::string(static_cast<std::size_t>(pad), 'x');
  return result;
}

std::int64_t int_member(const boost::json::value& payload, const char* name) {
  auto* o = payload.if_object();
  auto* v = o ? o->if_contains(name) : nullptr;
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

void register_test_handlers(handler_registry& r) {
  r.add("processing", "test.count", [](const job_context& ctx) -> handler_result {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(int_member(ctx.payload, "sleep_ms"));
    while (std::chrono::steady_clock::now() < until && !ctx.stop_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.stop_requested()) return handler_error::retryable("stopped before finishing");
    return succeed_counted(ctx);
  });
  r.add("processing", "test.ignore_stop", [](const job_context& ctx) -> handler_result {
    std::this_thread::sleep_for(std::chrono::milliseconds(int_member(ctx.payload, "sleep_ms")));
    return succeed_counted(ctx);
  });
  r.add("processing", "test.crash", [](const job_context&) -> handler_result { std::abort(); });
  r.add("processing", "test.fail", [](const job_context& ctx) -> handler_result {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(int_member(ctx.payload, "sleep_ms"));
    while (std::chrono::steady_clock::now() < until && !ctx.stop_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.attempt <= int_member(ctx.payload, "fail_times"))
      return handler_error::retryable("planned failure on attempt " + std::to_string(ctx.attempt));
    return succeed_counted(ctx);
  });
  // Fails (permanently) the first time this worker process runs a job, and
  // succeeds the next: a dead job that a retry brings back.
  r.add("processing", "test.fail_first", [](const job_context& ctx) -> handler_result {
    static std::mutex mu;
    static std::set<std::string> seen;
    std::lock_guard lk(mu);
    if (seen.insert(std::string(ctx.id)).second)
      return handler_error::permanent("planned failure on this job's first run");
    return succeed_counted(ctx);
  });
  // Succeeds, but on its first `hook_fail_times` attempts a second commit
  // hook fails (a division by zero, SQLSTATE 22012) after the first wrote
  // its count: the attempt is retried, and the count written must not stay.
  r.add("processing", "test.hook_fail", [](const job_context& ctx) -> handler_result {
    auto result = succeed_counted(ctx);
    if (ctx.attempt <= int_member(ctx.payload, "hook_fail_times"))
      ctx.on_success_commit([](pqxx::transaction_base& tx) { tx.exec_params("SELECT 1 / $1", 0); });
    return result;
  });
  r.add("processing", "test.fail_always", [](const job_context& ctx) -> handler_result {
    return handler_error::retryable("planned failure on attempt " + std::to_string(ctx.attempt));
  });
}

}  // namespace jobs
