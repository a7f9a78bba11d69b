// The JSON log lines (common/log.hpp), read back from stderr.
#include "common/log.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

// What `fn` writes to stderr (the log's one destination).
template <class Fn>
std::string stderr_of(Fn fn) {
  std::FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(::fileno(tmp), STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::rewind(tmp);
  std::string out;
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, tmp)) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

}  // namespace

TEST_CASE("a log line writes numbers as people do, not as 1.5E0") {
  auto line = stderr_of([] {
    jobs::log_info("scaling", {{"ready", 0.0}, {"rate", 1.523478}, {"workers", 3}, {"q", "email"}});
  });
  CHECK(line.find(R"("msg":"scaling","ready":0,"rate":1.523478,"workers":3,"q":"email"})") !=
        std::string::npos);
  CHECK(line.find("E0") == std::string::npos);
  CHECK(line.back() == '\n');
}

TEST_CASE("a sampled message: one line a period, the next one says how many were left out") {
  using namespace std::chrono_literals;
  jobs::log_sampler s(10s);
  jobs::log_sampler::clock::time_point t0{};
  std::int64_t left_out = -1;
  CHECK(s.admit(t0 + 100s, left_out));
  CHECK(left_out == 0);
  CHECK(!s.admit(t0 + 101s, left_out));
  CHECK(!s.admit(t0 + 109s, left_out));
  CHECK(s.admit(t0 + 110s, left_out));
  CHECK(left_out == 2);
  CHECK(s.admit(t0 + 200s, left_out));
  CHECK(left_out == 0);
  // Another kind of failure is not hidden behind the first's.
  CHECK(s.admit(t0 + 201s, left_out, "the database is unavailable"));
  CHECK(!s.admit(t0 + 202s, left_out, "the database is unavailable"));
  CHECK(s.admit(t0 + 202s, left_out, "a handler threw"));
  CHECK(!s.admit(t0 + 203s, left_out));

  jobs::log_sampler outage(1h);
  auto lines = stderr_of([&] {
    for (int i = 0; i < 5; ++i) outage.write(jobs::log_level::warn, "request failed", {{"n", i}});
  });
  CHECK(lines.find(R"("msg":"request failed","n":0})") != std::string::npos);
  CHECK(lines.find("\"n\":1") == std::string::npos);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
}

TEST_CASE("the log context's fields are on every line; a line's own fields win") {
  jobs::set_log_context({{"queue", "email"}, {"worker_id", "w1"}});
  auto lines = stderr_of([] {
    jobs::log_info("broker unreachable; retrying", {{"error", "refused"}});
    jobs::log_info("job claimed", {{"queue", "webhooks"}});
  });
  jobs::set_log_context({});
  CHECK(
      lines.find(
          R"("msg":"broker unreachable; retrying","error":"refused","queue":"email","worker_id":"w1"})") !=
      std::string::npos);
  CHECK(lines.find(R"("msg":"job claimed","queue":"webhooks","worker_id":"w1"})") !=
        std::string::npos);
  CHECK(stderr_of([] { jobs::log_info("plain"); }).find("worker_id") == std::string::npos);
}
