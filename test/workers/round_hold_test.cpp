// Unit tests of when a worker holds back its round (workers/detail/round_hold.hpp),
// on a made-up clock.
#include "workers/detail/round_hold.hpp"

#include <doctest/doctest.h>

#include <time.h>

#include <thread>

using namespace std::chrono_literals;
using jobs::detail::cpu_meter;
using jobs::detail::round_hold;
using jobs::detail::steady_time;

namespace {
const steady_time t0 = steady_time{} + 1h;  // the clock starts here (not zero)
}

TEST_CASE("a round is held back only while the handlers keep every core busy") {
  round_hold h(2, 50ms);
  // 2 cores: 3 jobs finished of 16 wanted, 100 handlers still running, 1.9 cores busy.
  CHECK(h.hold(t0, 3, 16, 100, 1.9));
  CHECK(h.wait_ms(t0, 200) == 50);
  CHECK(h.wait_ms(t0 + 20ms, 200) == 30);
  CHECK(h.wait_ms(t0 + 20ms, 10) == 10);      // never past the loop's own wait
  CHECK(h.wait_ms(t0 + 49'500us, 200) == 1);  // rounded up: the loop does not spin

  SUBCASE("until enough jobs finished") {
    CHECK(h.hold(t0 + 10ms, 15, 16, 100, 1.9));
    CHECK_FALSE(h.hold(t0 + 11ms, 16, 16, 100, 1.9));
    CHECK(h.wait_ms(t0 + 11ms, 200) == 200);  // nothing held: the loop's own wait
  }
  SUBCASE("until the hold's limit, from when it began") {
    CHECK(h.hold(t0 + 49ms, 5, 16, 100, 1.9));
    CHECK_FALSE(h.hold(t0 + 50ms, 5, 16, 100, 1.9));
    // The next round's hold starts afresh.
    CHECK(h.hold(t0 + 51ms, 1, 16, 100, 1.9));
    CHECK(h.wait_ms(t0 + 51ms, 200) == 50);
  }
  SUBCASE("until the handlers still running might finish within the round: twice the cores") {
    CHECK(h.hold(t0 + 1ms, 3, 16, 5, 1.9));
    CHECK_FALSE(h.hold(t0 + 2ms, 3, 16, 4, 1.9));
    CHECK(h.wait_ms(t0 + 2ms, 200) == 200);
  }
  SUBCASE("until released: the loop's wait is its own again") {
    h.release();
    CHECK(h.wait_ms(t0 + 1ms, 200) == 200);
    CHECK(h.hold(t0 + 60ms, 3, 16, 100, 1.9));  // a new hold starts afresh
    CHECK(h.wait_ms(t0 + 60ms, 200) == 50);
  }
  SUBCASE("until a core is to spare: the process leaves half a core idle") {
    CHECK_FALSE(h.hold(t0 + 1ms, 3, 16, 100, 1.4));
  }
}

TEST_CASE("a round with nothing finished, or on an idle machine, is never held") {
  round_hold h(2, 50ms);
  CHECK_FALSE(h.hold(t0, 0, 16, 100, 2.0));  // claims alone go at once
  CHECK_FALSE(h.hold(t0, 3, 16, 100, 0.2));  // sleeping handlers: cores to spare
  CHECK_FALSE(h.hold(t0, 3, 16, 0, 2.0));
  round_hold one(1, 50ms);
  CHECK(one.hold(t0, 1, 8, 3, 0.9));
  CHECK_FALSE(one.hold(t0 + 1ms, 1, 8, 2, 0.9));
}

TEST_CASE("a finished job waits in a held round unless it is async, being stopped or due") {
  round_hold h(2, 50ms);
  jobs::detail::in_hand j;
  j.deadline = t0 + 10s;
  CHECK(h.may_wait(j, t0));
  CHECK_FALSE(h.may_wait(j, t0 + 9'950ms));  // its timeout would pass within the hold
  auto cancelled = j;
  cancelled.why = jobs::detail::stop_reason::cancel;
  CHECK_FALSE(h.may_wait(cancelled, t0));
  auto timed_out = j;
  timed_out.why = jobs::detail::stop_reason::timeout;
  CHECK_FALSE(h.may_wait(timed_out, t0));
  auto async = j;
  async.async = true;
  CHECK_FALSE(h.may_wait(async, t0));
}

TEST_CASE("the CPU meter reports the cores the process kept busy") {
  cpu_meter m;
  auto start = std::chrono::steady_clock::now();
  CHECK(m.busy_cores(start) == 0);  // the first sample has nothing to compare with
  // Burn 150 ms of this thread's CPU, however long that takes on a busy machine.
  timespec a{}, b{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  while ((b.tv_sec - a.tv_sec) * 1'000'000'000L + (b.tv_nsec - a.tv_nsec) < 150'000'000L);
  auto now = std::chrono::steady_clock::now();
  double busy = m.busy_cores(now);
  // At least this thread's 150 ms over the wall time it took.
  CHECK(busy >= 0.15 / std::chrono::duration<double>(now - start).count() * 0.99);
  CHECK(m.busy_cores(now + 50ms) == busy);  // samples at least 100 ms apart
}

TEST_CASE("/proc/stat's cpu line gives busy and all ticks; idle and iowait are not busy") {
  using jobs::detail::parse_cpu_ticks;
  // user nice system idle iowait irq softirq steal guest guest_nice
  auto t = parse_cpu_ticks("cpu  100 2 30 800 50 0 7 1 40 0\n");
  REQUIRE(t.has_value());
  CHECK(t->busy == 100 + 2 + 30 + 7 + 1);  // guest time is in user already
  CHECK(t->all == 990);
  CHECK(t->steal == 1);
  auto old = parse_cpu_ticks("cpu 10 0 5 100");  // an old kernel's four fields
  REQUIRE(old.has_value());
  CHECK(old->busy == 15);
  CHECK(old->all == 115);
  CHECK(old->steal == 0);
  CHECK_FALSE(parse_cpu_ticks("cpu0 1 2 3 4 5 6 7 8").has_value());  // one core's line
  CHECK_FALSE(parse_cpu_ticks("cpu  1 2 x 4").has_value());
  CHECK_FALSE(parse_cpu_ticks("cpu  1 2").has_value());
  CHECK_FALSE(parse_cpu_ticks("").has_value());
}

TEST_CASE("the machine meter reads a share of the machine's CPU time") {
  jobs::detail::machine_meter m;
  auto start = std::chrono::steady_clock::now();
  CHECK(m.busy_share(start) == 0);  // the first sample has nothing to compare with
  // Keep this thread busy until /proc/stat's ticks (10 ms each) moved.
  while (std::chrono::steady_clock::now() - start < 150ms) {
  }
  double share = m.busy_share(std::chrono::steady_clock::now());
  CHECK(share > 0);  // this thread alone kept a core busy
  CHECK(share <= 1);
}

TEST_CASE("small rounds are spaced by the gap only while the machine is busy") {
  using jobs::detail::round_pace;
  round_pace p(4ms);
  CHECK_FALSE(p.wait(t0, 3, 128, 0.9));  // no round before: nothing to space from
  p.began(t0);
  CHECK(p.wait(t0 + 1ms, 3, 128, 0.9));
  CHECK(p.wait_ms(t0 + 1ms, 200) == 3);
  CHECK(p.wait_ms(t0 + 1ms, 2) == 2);          // never past the loop's own wait
  CHECK(p.wait_ms(t0 + 3'500us, 200) == 1);    // rounded up: the loop does not spin
  CHECK_FALSE(p.wait(t0 + 4ms, 3, 128, 0.9));  // the gap is over
  CHECK(p.wait_ms(t0 + 4ms, 200) == 200);

  SUBCASE("not on a machine with cores to spare") {
    CHECK_FALSE(p.wait(t0 + 1ms, 3, 128, 0.74));
    CHECK(p.wait_ms(t0 + 1ms, 200) == 200);
    CHECK(p.wait(t0 + 1ms, 3, 128, 0.75));
  }
  SUBCASE("not for a round of a quarter of the slots or more") {
    CHECK(p.wait(t0 + 1ms, 31, 128, 1.0));
    CHECK_FALSE(p.wait(t0 + 1ms, 32, 128, 1.0));
    CHECK_FALSE(p.wait(t0 + 1ms, 2, 8, 1.0));  // 8 handler threads: 2 jobs go at once
    CHECK(p.wait(t0 + 1ms, 1, 8, 1.0));
  }
  SUBCASE("the gap counts from the last round's start") {
    p.began(t0 + 3ms);
    CHECK(p.wait(t0 + 6ms, 3, 128, 1.0));
    CHECK(p.wait_ms(t0 + 6ms, 200) == 1);
  }
  SUBCASE("released: the loop's wait is its own again, though the gap still counts") {
    p.release();
    CHECK(p.wait_ms(t0 + 1ms, 200) == 200);
    CHECK(p.wait_ms(t0 + 10ms, 200) == 200);  // a gap long over leaves no 0 ms wait behind
    CHECK(p.wait(t0 + 2ms, 3, 128, 1.0));
  }
  SUBCASE("a gap of 0 never waits") {
    round_pace off(0ms);
    off.began(t0);
    CHECK_FALSE(off.wait(t0, 1, 128, 1.0));
    CHECK_FALSE(off.within_gap(t0, 1, 128));
  }
  SUBCASE("within the gap: every test but the machine's, and where the gap ends") {
    CHECK(p.within_gap(t0 + 1ms, 3, 128));
    CHECK_FALSE(p.within_gap(t0 + 4ms, 3, 128));
    CHECK_FALSE(p.within_gap(t0 + 1ms, 32, 128));
    CHECK(p.gap_end() == t0 + 4ms);
    round_pace fresh(4ms);
    CHECK_FALSE(fresh.within_gap(t0, 1, 128));
  }
}
