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

// Waits on the wake fd only: a finished job that did not make it readable
// fails here instead of being picked up by a later poll.
std::vector<detail::finished_job> take_on_wake(detail::handler_pool& pool, std::size_t n) {
  std::vector<detail::finished_job> out;
  while (out.size() < n) {
    struct pollfd p {
      pool.wake_fd(), POLLIN, 0
    };
    if (::poll(&p, 1, 5000) != 1) break;
    pool.take_finished(out);
  }
  return out;
}

// Gives the pool `jobs` one at a time, or all at once as a worker's round does.
void submit_all(detail::handler_pool& pool, std::vector<claimed_job> jobs, bool at_once) {
  std::vector<detail::handler_pool::queued_job> queued;
  for (auto& j : jobs) {
    auto stop = std::make_shared<std::atomic<bool>>(false);
    if (at_once)
      queued.emplace_back(std::move(j), std::move(stop));
    else
      pool.submit(std::move(j), std::move(stop));
  }
  if (at_once) pool.submit(std::move(queued));
}

TEST_CASE("slow handlers get a thread each: threads are woken until the queue is empty") {
  bool at_once = false;
  SUBCASE("submitted one at a time") {}
  SUBCASE("submitted at once") { at_once = true; }
  constexpr int n = 32;
  handler_registry r;
  std::atomic<int> inside{0};
  r.add("processing", "block", [&](const job_context&) -> handler_result {
    // Returns once all n run at the same time (or gives up after 5 s).
    ++inside;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (inside.load() < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    return boost::json::value(inside.load() >= n);
  });
  detail::handler_pool pool(n, r);
  for (int round = 0; round < 3; ++round) {
    inside = 0;
    std::vector<claimed_job> jobs;
    for (int i = 0; i < n; ++i) {
      jobs.push_back(job(std::to_string(i), "block", "{}"));
      jobs.back().queue = "processing";
    }
    submit_all(pool, std::move(jobs), at_once);
    auto done = take_on_wake(pool, n);
    REQUIRE(done.size() == n);
    for (const auto& f : done) CHECK(std::get<boost::json::value>(f.outcome) == true);
  }
}

TEST_CASE("every finished job makes the wake fd readable, however the pushes interleave") {
  bool at_once = false;
  SUBCASE("submitted one at a time") {}
  SUBCASE("submitted at once") { at_once = true; }
  handler_registry r;
  r.add("processing", "quick", [](const job_context& ctx) -> handler_result {
    if (ctx.payload.at("i").as_int64() % 7 == 0) std::this_thread::sleep_for(100us);
    return boost::json::value(1);
  });
  detail::handler_pool pool(8, r);
  std::size_t total = 0;
  for (int round = 0; round < 200; ++round) {
    int burst = 1 + round % 25;
    std::vector<claimed_job> jobs;
    for (int i = 0; i < burst; ++i) {
      jobs.push_back(job(std::to_string(round) + "-" + std::to_string(i), "quick",
                         "{\"i\":" + std::to_string(i) + "}"));
      jobs.back().queue = "processing";
    }
    submit_all(pool, std::move(jobs), at_once);
    auto done = take_on_wake(pool, static_cast<std::size_t>(burst));
    REQUIRE(done.size() == static_cast<std::size_t>(burst));
    total += done.size();
  }
  CHECK(total == 2600);
}
