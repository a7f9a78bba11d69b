// ctest-labels: email
// The email worker against a real SMTP server scripted to answer 451, 550,
// or nothing after the end of data; header injection at the API and in the
// worker; 200 concurrent messages; the per-domain throttle.
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"
#include "support/smtp_sink.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace json = boost::json;

TEST_CASE("a relay answering 451 then 250: the retry succeeds and one message is stored") {
  scratch s;
  smtp_sink sink(s, "451", {"--replies", "451"});
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  CHECK(job.at("attempts") == 2);
  CHECK(attempt_error(job, 0).find("smtp 451 4.3.0 Try again later (sink)") == 0);
  CHECK(sink.events() == std::vector<std::string>{"0 451", "1 250"});
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0].header("Message-ID") == "<" + id + "@example.com>");
}

TEST_CASE("a relay answering 550: the job is dead with the reply recorded") {
  scratch s;
  smtp_sink sink(s, "550", {"--replies", "550"});
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  CHECK(job.at("attempts") == 1);
  CHECK(job.at("error") == "smtp 550 5.7.1 Message rejected (sink)");
  CHECK(sink.messages().empty());
}

TEST_CASE("a relay refusing recipients: all with 5xx is dead at once, some is a success") {
  // libcurl sends QUIT once every recipient is refused; the relay's 221 Bye
  // must not count as a recipient's reply.
  scratch s;
  smtp_sink sink(s, "rcpt");
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto all =
      submit_email(h, key,
                   R"({"from":"a@example.com","to":["reject1@example.org","reject2@example.net"],)"
                   R"("subject":"s","text":"t"})");
  auto dead = wait_final(h, key, all);
  CHECK(dead.at("state") == "dead");
  CHECK(dead.at("attempts") == 1);
  CHECK(dead.at("error") == "smtp 550 5.1.1 <reject1@example.org>: no such user (sink)");

  auto some =
      submit_email(h, key,
                   R"({"from":"a@example.com","to":["reject1@example.org","b@example.org"],)"
                   R"("subject":"s","text":"t"})");
  auto done = wait_final(h, key, some);
  REQUIRE_MESSAGE(done.at("state") == "succeeded", json::serialize(done));
  const auto& result = done.at("result").as_object();
  CHECK(json::serialize(result.at("rejected")).find("reject1@example.org") != std::string::npos);
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(json::serialize(got[0].meta.at("rcpt_tos")) == R"(["b@example.org"])");
}

TEST_CASE("connection lost after the end of data: unknown, and the retry reuses the Message-ID") {
  scratch s;
  smtp_sink sink(s, "drop", {"--replies", "drop,hang"});
  auto env = relay_env(sink);
  env["JOBS_SMTP_TIMEOUT_MS"] = "1500";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  CHECK(job.at("attempts") == 3);
  const std::string mid = "<" + id + "@example.com>";
  // Dropped after the end of data, then no reply within the deadline.
  for (std::size_t i : {0, 1}) {
    auto error = attempt_error(job, i);
    CHECK_MESSAGE(error.starts_with("unknown: "), error);
    CHECK(error.find("reuses Message-ID " + mid) != std::string::npos);
  }
  CHECK(sink.events() == std::vector<std::string>{"0 drop", "1 hang", "2 250"});
  // The relay had queued the first two: the receiver sees one Message-ID three times.
  auto got = sink.messages();
  REQUIRE(got.size() == 3);
  for (const auto& m : got) CHECK(m.header("Message-ID") == mid);
}

TEST_CASE("header injection: 400 at the API, refused again by the worker") {
  scratch s;
  smtp_sink sink(s, "inject");
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  struct attempt {
    std::string payload, pointer;
  };
  for (
      const auto& a : std::vector<attempt>{
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: victim@example.net","text":"t"})",
           "/payload/subject"},
          {R"({"from":{"email":"a@example.com","name":"A\nBcc: victim@example.net"},"to":["b@example.org"],"subject":"s","text":"t"})",
           "/payload/from/name"},
          {R"({"from":"a@example.com","to":["b@example.org\r\nBcc: victim@example.net"],"subject":"s","text":"t"})",
           "/payload/to/0"},
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","headers":{"X-Id":"1\u0000\r\nBcc: victim@example.net"}})",
           "/payload/headers/X-Id"},
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","headers":{"Bcc":"victim@example.net"}})",
           "/payload/headers"},  // valijson names the member whose names failed
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","attachments":[{"filename":"a\r\nBcc: victim@example.net","content":""}]})",
           "/payload/attachments/0/filename"}}) {
    auto r = h.post_json("/v1/jobs",
                         R"({"queue":"email","type":"send","payload":)" + a.payload + "}", key);
    CHECK_MESSAGE(r.status == 400, a.payload);
    CHECK(r.json().at("code") == "payload_invalid");
    CHECK_MESSAGE(r.json().at("pointer") == a.pointer.c_str(), r.body);
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 0);

  // A job written around the API (an older schema, a bug, a hand-made row):
  // the worker refuses it for good and sends nothing.
  auto j = sample_job("acme");
  j.queue = "email";
  j.type = "send";
  j.payload_json =
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: victim@example.net","text":"t"})";
  {
    auto c = pg_connect(s.pg_url);
    pqxx::work w(*c);
    insert_jobs(w, std::span(&j, 1));
    std::vector<std::string> ids{j.id.value};
    record_publish_batch(w, ids, std::chrono::milliseconds(0));
    w.commit();
  }
  // Recorded as a publish batch never settled, with no grace: the
  // scheduler's recovery path publishes it.
  auto id = j.id.value;
  auto job = wait_final(h, key, id, 60s);
  CHECK(job.at("state") == "dead");
  CHECK(std::string(job.at("error").as_string()).find("subject contains CR, LF") !=
        std::string::npos);
  CHECK(sink.events().empty());
}

TEST_CASE("200 messages sent concurrently all arrive exactly once") {
  scratch s;
  smtp_sink sink(s, "200");
  auto env = relay_env(sink);
  env["JOBS_WORKER_CONCURRENCY"] = "16";
  env["JOBS_SMTP_MAX_CONNECTIONS"] = "8";
  env["JOBS_EMAIL_DOMAIN_RATE"] = "0";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  constexpr int total = 200, threads = 4;
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      http_client h(p.port);
      for (int i = t; i < total; i += threads) {
        auto id =
            submit_email(h, key,
                         fmt::format(R"({{"from":"a@example.com","to":["user{}@example{}.org"],)"
                                     R"("subject":"n{}","text":"message {}"}})",
                                     i, i % 5, i, i));
        std::lock_guard lk(mu);
        ids.insert(id);
      }
    });
  }
  for (auto& c : clients) c.join();
  REQUIRE(ids.size() == total);
  bool done = wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
      },
      120s);
  CHECK_MESSAGE(done, count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  auto got = sink.messages();
  CHECK(got.size() == total);
  std::map<std::string, int> by_id;
  for (const auto& m : got) {
    auto mid = m.header("Message-ID");
    by_id[mid.substr(1, mid.find('@') - 1)]++;
  }
  int duplicated = 0, lost = 0;
  for (const auto& id : ids) {
    auto it = by_id.find(id);
    if (it == by_id.end())
      ++lost;
    else if (it->second > 1)
      ++duplicated;
  }
  MESSAGE("lost=", lost, " duplicated=", duplicated);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(by_id.size() == total);
}

TEST_CASE("the per-domain throttle spaces messages to one domain") {
  scratch s;
  smtp_sink sink(s, "throttle");
  auto env = relay_env(sink);
  env["JOBS_EMAIL_DOMAIN_RATE"] = "4";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  constexpr int total = 16;
  for (int i = 0; i < total; ++i)
    submit_email(
        h, key,
        fmt::format(
            R"({{"from":"a@example.com","to":["u{}@busy.example"],"subject":"s","text":"t"}})", i));
  REQUIRE(wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
      },
      60s));
  std::vector<double> at;
  for (const auto& m : sink.messages()) at.push_back(m.meta.at("received_at").as_double());
  REQUIRE(at.size() == total);
  std::sort(at.begin(), at.end());
  // 4/s with a burst of 4: 16 messages need at least (16 - 4) / 4 = 3 s.
  MESSAGE("16 messages to one domain took ", at.back() - at.front(), " s");
  CHECK(at.back() - at.front() >= 2.7);
  // No second holds more than the burst plus the rate.
  for (std::size_t i = 0; i + 8 < at.size(); ++i) CHECK(at[i + 8] - at[i] >= 0.9);
  // A throttled job is snoozed or waits: never an attempt lost to it.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
}
