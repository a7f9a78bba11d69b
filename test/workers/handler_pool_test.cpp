// The handler pool with async handlers (workers/detail/handler_pool.hpp):
// started on a handler thread, completed later from another thread.
#include "workers/detail/handler_pool.hpp"

#include <doctest/doctest.h>
#include <poll.h>

#include <thread>

using namespace jobs;
using namespace std::chrono_literals;

namespace {
claimed_job job(const std::string& id, const std::string& type, const std::string& payload) {
  claimed_job j;
  j.id = id;
  j.tenant = "t";
  j.queue = "webhooks";
  j.type = type;
  j.payload_json = payload;
  j.attempt = 1;
  j.max_attempts = 3;
  return j;
}

// Waits (bounded) until `n` jobs have finished.
std::vector<detail::finished_job> take(detail::handler_pool& pool, std::size_t n) {
  std::vector<detail::finished_job> out;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (out.size() < n && std::chrono::steady_clock::now() < until) {
    struct pollfd p {
      pool.wake_fd(), POLLIN, 0
    };
    ::poll(&p, 1, 50);
    pool.take_finished(out);
  }
  return out;
}
}  // namespace

TEST_CASE("an async handler completes later, from another thread, with its hooks") {
  handler_registry r;
  std::vector<std::thread> later;
  r.add_async("webhooks", "deliver", [&](const job_context& ctx, completion done) {
    ctx.on_success_commit([](pqxx::transaction_base&) {});
    auto n = ctx.payload.at("n").as_int64();
    std::string id(ctx.id);
    const auto* stop = ctx.cancel;
    later.emplace_back([done, n, id, stop] {
      std::this_thread::sleep_for(50ms);
      if (n == 2) return done(handler_error::retryable("no"));
      if (n == 3) {
        while (!stop->load()) std::this_thread::sleep_for(5ms);
        return done(handler_error::retryable("stopped"));
      }
      done(boost::json::value(n));
      done(boost::json::value(99));  // ignored
    });
  });
  CHECK(r.has_async("webhooks"));
  CHECK_FALSE(r.has_async("processing"));
  CHECK(r.find("webhooks", "deliver") == nullptr);
  {
    detail::handler_pool pool(1, r);
    auto stop3 = std::make_shared<std::atomic<bool>>(false);
    pool.submit(job("a", "deliver", R"({"n":1})"), std::make_shared<std::atomic<bool>>(false));
    pool.submit(job("b", "deliver", R"({"n":2})"), std::make_shared<std::atomic<bool>>(false));
    pool.submit(job("c", "deliver", R"({"n":3})"), stop3);
    pool.submit(job("d", "deliver", "not json"), std::make_shared<std::atomic<bool>>(false));
    auto first = take(pool, 3);
    REQUIRE(first.size() == 3);
    std::map<std::string, const detail::finished_job*> by_id;
    for (const auto& f : first) by_id[f.job.id] = &f;
    REQUIRE(by_id.count("a"));
    CHECK(std::get<boost::json::value>(by_id["a"]->outcome) == 1);
    CHECK(by_id["a"]->hooks.size() == 1);
    CHECK(std::get<handler_error>(by_id["b"]->outcome).message == "no");
    CHECK(by_id["b"]->hooks.empty());  // hooks only for a success
    CHECK(std::get<handler_error>(by_id["d"]->outcome).what == handler_error::kind::permanent);
    stop3->store(true);  // the stop flag reaches the async work
    auto second = take(pool, 1);
    REQUIRE(second.size() == 1);
    CHECK(second[0].job.id == "c");
    for (auto& t : later) t.join();
    std::vector<detail::finished_job> none;
    pool.take_finished(none);
    CHECK(none.empty());  // the second completion of "a" was ignored
  }
}
