// workers/detail/outcome.hpp: what an attempt's end means for its job.
#include "workers/detail/outcome.hpp"

#include <doctest/doctest.h>

#include <limits>

using namespace jobs;
using namespace std::chrono;

namespace {
const jobs::sys_time now = sys_days{year{2026} / 11 / 22} + hours{6};

claimed_job job(int attempt, int max_attempts) {
  claimed_job j;
  j.id = "01a20186-a36f-7fa4-aba8-185e529e034e";
  j.attempt = attempt;
  j.max_attempts = max_attempts;
  return j;
}
}  // namespace

TEST_CASE("a result succeeds and is stored") {
  auto o = detail::decide_outcome(job(1, 5), boost::json::value(boost::json::object{{"n", 1}}), {},
                                  0.5, now);
  CHECK(o.state == job_state::succeeded);
  CHECK(o.result_json == R"({"n":1})");
  CHECK(o.error.empty());
}

TEST_CASE("a result or error with bytes PostgreSQL refuses is stored with U+FFFD instead") {
  // A NUL or a malformed byte would make the outcome unwritable and leave
  // the job running for ever; they become U+FFFD, keys included.
  boost::json::object r;
  r["ok"] = "fine \u20AC";
  r[std::string("k\0ey", 4)] = boost::json::array{"a\xFF", std::string("b\0", 2)};
  auto o = detail::decide_outcome(job(1, 5), boost::json::value(r), {}, 0.5, now);
  CHECK(o.state == job_state::succeeded);
  CHECK(o.result_json == "{\"ok\":\"fine \u20AC\",\"k\uFFFDey\":[\"a\uFFFD\",\"b\uFFFD\"]}");
  auto e = detail::decide_outcome(
      job(1, 5), handler_error::retryable(std::string("bad \xC3(\0", 7)), {}, 0.5, now);
  CHECK(e.error == "bad \uFFFD(\uFFFD");
  // JSON has no NaN or infinity: PostgreSQL refused "NaN", the worker
  // retried the completion for ever and its other jobs died. They are null.
  boost::json::object n{{"nan", std::numeric_limits<double>::quiet_NaN()},
                        {"inf", boost::json::array{-std::numeric_limits<double>::infinity(), 1.5}}};
  auto f = detail::decide_outcome(job(1, 5), boost::json::value(n), {}, 0.5, now);
  CHECK(f.state == job_state::succeeded);
  CHECK(f.result_json == R"({"nan":null,"inf":[null,1.5E0]})");
  // A message is for people: kept up to 8 KiB, whole characters.
  std::string huge;
  for (int i = 0; i < 5000; ++i) huge += "\u20AC";  // 15,000 bytes
  auto cut = detail::decide_outcome(job(1, 5), handler_error::retryable(huge), {}, 0.5, now);
  CHECK(cut.error.size() == 8190);
  CHECK(cut.error == huge.substr(0, 8190));
  // A result over 1 MiB or nested deeper than 64: dead, saying so.
  auto big = detail::decide_outcome(job(1, 5), boost::json::value(std::string(1 << 20, 'x')), {},
                                    0.5, now);
  CHECK(big.state == job_state::dead);
  CHECK(big.result_json.empty());
  CHECK(big.error.starts_with("the handler's result is 1048578 bytes, over the limit of 1048576"));
  boost::json::value nested = boost::json::array{};
  for (int i = 0; i < 64; ++i) nested = boost::json::array{nested};
  CHECK(detail::decide_outcome(job(1, 5), nested, {}, 0.5, now).state == job_state::dead);
  CHECK(detail::decide_outcome(job(1, 5), nested, {}, 0.5, now).error ==
        "the handler's result nests deeper than 64");
  nested = nested.as_array()[0];  // 64 deep
  CHECK(detail::decide_outcome(job(1, 5), nested, {}, 0.5, now).state == job_state::succeeded);
  // Clean text is left as it is.
  CHECK(detail::decide_outcome(job(1, 5), boost::json::value("caf\xC3\xA9"), {}, 0.5, now)
            .result_json == "\"caf\xC3\xA9\"");
}

TEST_CASE("a retryable error fails the attempt and retries after the backoff") {
  retry_policy p;
  p.base = milliseconds(1000);
  p.jitter = retry_policy::jitter_mode::none;
  auto o = detail::decide_outcome(job(3, 5), handler_error::retryable("boom"), p, 0.5, now);
  CHECK(o.state == job_state::failed);
  CHECK(o.error == "boom");
  CHECK(o.run_at == format_rfc3339(now + seconds(4)));
}

TEST_CASE("the last attempt, or a permanent error, is dead") {
  CHECK(detail::decide_outcome(job(5, 5), handler_error::retryable("x"), {}, 0.5, now).state ==
        job_state::dead);
  auto o = detail::decide_outcome(job(1, 5), handler_error::permanent("bad input"), {}, 0.5, now);
  CHECK(o.state == job_state::dead);
  CHECK(o.error == "bad input");
  CHECK(o.run_at.empty());
}

TEST_CASE("a snooze goes back to scheduled at its time, its message saying why") {
  handler_error e{handler_error::kind::snooze, "later", now + minutes(5)};
  auto o = detail::decide_outcome(job(2, 2), e, {}, 0.5, now);
  CHECK(o.state == job_state::scheduled);
  CHECK(o.run_at == format_rfc3339(now + minutes(5)));
  CHECK(o.error == "later");
  e.message.clear();
  CHECK(detail::decide_outcome(job(2, 2), e, {}, 0.5, now).error.empty());
}

TEST_CASE("a job's own backoff overrides the worker's") {
  auto j = job(2, 5);
  j.backoff_base_ms = 300;
  j.backoff_cap_ms = 400;
  j.backoff_jitter = "none";
  auto p = detail::job_retry_policy({}, j);
  CHECK(p.base == milliseconds(300));
  CHECK(p.cap == milliseconds(400));
  CHECK(p.jitter == retry_policy::jitter_mode::none);
  auto o = detail::decide_outcome(j, handler_error::retryable("x"), {}, 0.0, now);
  CHECK(o.run_at == format_rfc3339(now + milliseconds(400)));  // 600 capped at 400
  CHECK(detail::job_retry_policy({}, job(1, 1)).jitter == retry_policy::jitter_mode::full);
}

TEST_CASE("a retryable error with its own retry time runs again then, not after the backoff") {
  auto o = detail::decide_outcome(job(2, 5), handler_error::retryable_at("429", now + seconds(30)),
                                  {}, 0.5, now);
  CHECK(o.state == job_state::failed);
  CHECK(o.run_at == format_rfc3339(now + seconds(30)));
  // A time in the past means now; attempts still run out.
  CHECK(detail::decide_outcome(job(2, 5), handler_error::retryable_at("x", now - hours(1)), {}, 0.5,
                               now)
            .run_at == format_rfc3339(now));
  CHECK(detail::decide_outcome(job(5, 5), handler_error::retryable_at("x", now), {}, 0.5, now)
            .state == job_state::dead);
}
