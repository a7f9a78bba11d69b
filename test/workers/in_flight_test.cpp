// Unit tests of the worker's bookkeeping of cancels, timeouts and written-off
// handlers (workers/detail/in_flight.hpp), on a made-up clock.
#include "workers/detail/in_flight.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using jobs::detail::in_flight;
using jobs::detail::stop_reason;

namespace {

const in_flight::time_point t0{};  // the clock starts here

// Its claim number is its attempt's, unless given.
jobs::claimed_job job(const std::string& id, int attempt = 1, int timeout_ms = 0,
                      std::uint64_t claim = 0) {
  jobs::claimed_job j;
  j.id = id;
  j.attempt = attempt;
  j.claim = claim ? claim : static_cast<std::uint64_t>(attempt);
  j.max_attempts = 3;
  j.timeout_ms = timeout_ms;
  j.payload_json = R"({"big":"payload"})";
  return j;
}

}  // namespace

TEST_CASE("a job's timeout is its own timeout_ms, else the default") {
  in_flight f(5s);
  f.start(job("a", 1, 300), 11, 60s, t0);
  f.start(job("b"), 12, 60s, t0);
  REQUIRE(f.find("a"));
  CHECK(f.find("a")->timeout == 300ms);
  CHECK(f.find("a")->deadline == t0 + 300ms);
  CHECK(f.find("a")->tag == 11);
  CHECK(f.find("a")->job.payload_json.empty());  // not kept
  CHECK(f.find("b")->timeout == 60s);
  CHECK(f.size() == 2);
  CHECK(f.busy() == 2);
  CHECK(f.find("c") == nullptr);
}

TEST_CASE("a job is stopped when its timeout passes, once") {
  in_flight f(5s);
  auto flag = f.start(job("a", 1, 300), 1, 60s, t0);
  CHECK(f.expire(t0 + 299ms).empty());
  CHECK_FALSE(flag->load());
  auto stopped = f.expire(t0 + 300ms);
  CHECK(stopped == std::vector<std::string>{"a"});
  CHECK(flag->load());
  CHECK(f.find("a")->why == stop_reason::timeout);
  CHECK(f.expire(t0 + 10s).empty());  // already stopped
}

TEST_CASE("a job whose handler returned is not stopped by its timeout") {
  in_flight f(5s);
  auto flag = f.start(job("a", 1, 300), 1, 60s, t0);
  f.start(job("b", 1, 300), 2, 60s, t0);
  // "a" returned in time; its outcome waits for a round that lands.
  auto returned = [](const jobs::detail::in_hand& j) { return j.job.id == "a"; };
  CHECK(f.expire(t0 + 1s, returned) == std::vector<std::string>{"b"});
  CHECK_FALSE(flag->load());
  CHECK(f.find("a")->why == stop_reason::none);
  // Nor by the drain's deadline.
  f.stop_all(t0 + 2s, returned);
  CHECK_FALSE(flag->load());
  CHECK(f.find("a")->why == stop_reason::none);
}

TEST_CASE("a cancel stops the job's handler and no other") {
  in_flight f(5s);
  auto a = f.start(job("a"), 1, 60s, t0);
  auto b = f.start(job("b"), 2, 60s, t0);
  CHECK(f.cancel("a", t0 + 1s));
  CHECK(a->load());
  CHECK_FALSE(b->load());
  CHECK(f.find("a")->why == stop_reason::cancel);
  CHECK_FALSE(f.cancel("a", t0 + 2s));        // already cancelled
  CHECK_FALSE(f.cancel("unknown", t0 + 2s));  // not in hand: a NOTIFY for another worker's job
}

TEST_CASE("a stopped job is overdue when the grace passes, not before") {
  in_flight f(5s);
  f.start(job("a"), 1, 60s, t0);
  f.start(job("b", 1, 1000), 2, 60s, t0);
  f.cancel("a", t0 + 1s);
  f.expire(t0 + 1s);  // b times out
  CHECK(f.overdue(t0 + 5999ms).empty());
  auto due = f.overdue(t0 + 6s);
  REQUIRE(due.size() == 2);
  for (const auto& j : due)
    CHECK(j.why == (j.job.id == "a" ? stop_reason::cancel : stop_reason::timeout));
}

TEST_CASE("a cancel after a timeout wins, within the timeout's grace") {
  in_flight f(5s);
  f.start(job("a", 1, 1000), 1, 60s, t0);
  f.expire(t0 + 1s);
  CHECK(f.cancel("a", t0 + 4s));
  CHECK(f.find("a")->why == stop_reason::cancel);
  CHECK(f.overdue(t0 + 6s).size() == 1);
}

TEST_CASE("with no grace a stopped job is overdue at once") {
  in_flight f(0ms);
  f.start(job("a"), 1, 60s, t0);
  CHECK(f.overdue(t0 + 1s).empty());  // running normally
  f.cancel("a", t0 + 1s);
  CHECK(f.overdue(t0 + 1s).size() == 1);
}

TEST_CASE("a written-off handler keeps its thread busy until it returns; its result is discarded") {
  in_flight f(5s);
  f.start(job("a", 1), 1, 60s, t0);
  f.start(job("b", 1), 2, 60s, t0);
  f.cancel("a", t0);
  f.write_off("a");
  CHECK(f.find("a") == nullptr);
  CHECK(f.size() == 1);
  CHECK(f.busy() == 2);
  CHECK_FALSE(f.discard("b", 1));  // not written off: its result counts
  CHECK(f.discard("a", 1));
  CHECK(f.busy() == 1);
  CHECK_FALSE(f.discard("a", 1));  // once
}

TEST_CASE("a retry of a written-off job is a job of its own") {
  in_flight f(5s);
  f.start(job("a", 1, 100), 1, 60s, t0);
  f.expire(t0 + 100ms);
  f.write_off("a");
  auto again = f.start(job("a", 2, 100), 7, 60s, t0 + 1s);  // redelivered for attempt 2
  CHECK_FALSE(again->load());
  CHECK(f.busy() == 2);
  CHECK_FALSE(f.discard("a", 2));  // the new attempt's result counts
  CHECK(f.discard("a", 1));        // the old one's does not
  CHECK(f.find("a")->job.attempt == 2);
}

TEST_CASE("a written-off job retried from its first attempt again is a claim of its own") {
  // POST /retry resets the attempts: the next claim is attempt 1 again.
  in_flight f(5s);
  f.start(job("a", 1, 100, 7), 1, 60s, t0);
  f.expire(t0 + 100ms);
  f.write_off("a");
  f.start(job("a", 1, 100, 9), 2, 60s, t0 + 1s);
  CHECK(f.busy() == 2);
  CHECK_FALSE(f.discard("a", 9));  // the new claim's result counts
  CHECK(f.discard("a", 7));        // the written-off one's does not
  CHECK(f.busy() == 1);
}

TEST_CASE("a job whose lease was lost is stopped once, with its grace") {
  in_flight f(5s);
  auto flag = f.start(job("a"), 1, 60s, t0);
  CHECK_FALSE(f.lose("b", t0));  // not in hand
  CHECK(f.lose("a", t0 + 1s));
  CHECK(flag->load());
  CHECK(f.find("a")->why == stop_reason::lost);
  CHECK_FALSE(f.lose("a", t0 + 2s));  // once
  CHECK(f.overdue(t0 + 5s).empty());
  CHECK(f.overdue(t0 + 6s).size() == 1);
}

TEST_CASE("stop_all stops every handler at the drain deadline; a cancel keeps its reason") {
  in_flight f(5s);
  auto a = f.start(job("a"), 1, 60s, t0);
  auto b = f.start(job("b"), 2, 60s, t0);
  auto c = f.start(job("c"), 3, 60s, t0);
  f.cancel("c", t0);
  f.stop_all(t0 + 30s);
  CHECK(a->load());
  CHECK(b->load());
  CHECK(f.find("a")->why == stop_reason::shutdown);
  CHECK(f.find("c")->why == stop_reason::cancel);
  // Their grace runs from the deadline; the cancel's from the cancel.
  auto late = f.overdue(t0 + 34s);
  REQUIRE(late.size() == 1);
  CHECK(late[0].job.id == "c");
  CHECK(f.overdue(t0 + 35s).size() == 3);
}

TEST_CASE("sync and async jobs are counted apart, written-off ones included") {
  in_flight f(1s);
  f.start(job("s"), 1, 60s, t0);
  f.start(job("a1"), 2, 60s, t0, true);
  f.start(job("a2"), 3, 60s, t0, true);
  CHECK(f.busy(false) == 1);
  CHECK(f.busy(true) == 2);
  f.cancel("a1", t0);
  f.write_off("a1");
  CHECK(f.busy(true) == 2);  // its completion has not come yet
  CHECK(f.discard("a1", 1));
  CHECK(f.busy(true) == 1);
  CHECK(f.busy() == 2);
}
