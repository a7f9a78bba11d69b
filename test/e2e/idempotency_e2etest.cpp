// Idempotent submission end to end: the API and workers as processes, an
// Idempotency-Key on POST /v1/jobs, and PostgreSQL and RabbitMQ checked for
// what was recorded and published.
#include "common/db.hpp"
#include "queues/amqp.hpp"
#include "support/live.hpp"
#include "support/openapi.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include <latch>
#include <mutex>
#include <set>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

http_reply post(http_client& h, const std::string& api_key, const std::string& body,
                const std::string& idempotency_key = {}) {
  std::map<std::string, std::string> headers{{"authorization", "Bearer " + api_key},
                                             {"content-type", "application/json"}};
  if (!idempotency_key.empty()) headers["idempotency-key"] = idempotency_key;
  return h.request(boost::beast::http::verb::post, "/v1/jobs", body, headers);
}

std::string id_of(const http_reply& r) { return std::string(r.json().at("id").as_string()); }

long count_key(const std::string& pg_url, const std::string& key) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  return n.exec_params("SELECT count(*) FROM jobs WHERE idempotency_key = $1", key)[0][0]
      .as<long>();
}

bool succeeded(const std::string& pg_url, long total) {
  return count(pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
}

const std::string hash_body =
    R"({"queue":"processing","type":"hash","payload":{"input":"order 7","algorithm":"sha256"}})";

}  // namespace

TEST_CASE("the same key and request answer 200 with the original job, which runs once") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  openapi_contract contract;

  auto first = post(h, key, hash_body, "order-7");
  REQUIRE(first.status == 202);
  CHECK(first.headers.count("idempotent-replayed") == 0);
  auto id = id_of(first);

  auto again = post(h, key, hash_body, "order-7");
  CHECK(again.status == 200);
  CHECK(again.headers["idempotent-replayed"] == "true");
  CHECK(again.headers["location"] == "/v1/jobs/" + id);
  CHECK(id_of(again) == id);
  auto v = contract.violations("Replayed", again.json());
  CHECK_MESSAGE(v.empty(), (v.empty() ? "" : v.front()));

  // The key as a member instead of the header, the members in another order
  // and a default spelled out: still the same request.
  auto member = post(h, key,
                     R"({"idempotency_key":"order-7","priority":0,"payload":{"algorithm":"sha256",)"
                     R"("input":"order 7"},"type":"hash","queue":"processing"})");
  CHECK(member.status == 200);
  CHECK(id_of(member) == id);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 1);

  // It runs exactly once, and a replay afterwards shows it as it is now.
  REQUIRE(wait_until([&] { return succeeded(s.pg_url, 1); }, 30s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 1);
  auto later = post(h, key, hash_body, "order-7");
  CHECK(later.status == 200);
  CHECK(id_of(later) == id);
  CHECK(later.json().at("state") == "succeeded");
  CHECK(contract.violations("Replayed", later.json()).empty());
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 1);
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 1);
}

TEST_CASE("the same key with a different request is 409 idempotency_key_reused") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  openapi_contract contract;

  REQUIRE(post(h, key, hash_body, "order-7").status == 202);
  for (
      std::string other :
      {R"({"queue":"processing","type":"hash","payload":{"input":"order 8","algorithm":"sha256"}})",
       R"({"queue":"processing","type":"hash","payload":{"input":"order 7","algorithm":"sha256"},)"
       R"("priority":5})",
       R"({"queue":"processing","type":"noop","payload":{}})"}) {
    CAPTURE(other);
    auto r = post(h, key, other, "order-7");
    CHECK(r.status == 409);
    CHECK(r.headers["content-type"] == "application/problem+json");
    CHECK(r.json().at("code") == "idempotency_key_reused");
    CHECK(contract.violations("Problem", r.json()).empty());
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 1);
  // The original request is still a replay.
  CHECK(post(h, key, hash_body, "order-7").status == 200);
}

TEST_CASE("50 concurrent submissions with one key create one job, published once, run once") {
  scratch s;
  platform p(s, {});  // no worker yet: the queue shows what was published
  auto key = create_key(s.pg_url, "acme");
  constexpr int clients = 50, rounds = 3;

  for (int round = 0; round < rounds; ++round) {
    auto idem = fmt::format("burst-{}", round);
    auto body =
        fmt::format(R"({{"queue":"processing","type":"noop","payload":{{"echo":{}}}}})", round);
    std::vector<std::unique_ptr<http_client>> conns;
    for (int i = 0; i < clients; ++i) conns.push_back(std::make_unique<http_client>(p.port));
    std::latch start(clients);
    std::mutex mu;
    std::vector<int> statuses;
    std::set<std::string> ids;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto r = post(*conns[i], key, body, idem);
        std::lock_guard lk(mu);
        statuses.push_back(r.status);
        if (r.status == 200 || r.status == 202) ids.insert(id_of(r));
        if (r.status != 200 && r.status != 202) MESSAGE("status ", r.status, " ", r.body);
      });
    for (auto& t : threads) t.join();
    CAPTURE(round);
    CHECK(std::count(statuses.begin(), statuses.end(), 202) == 1);
    CHECK(std::count(statuses.begin(), statuses.end(), 200) == clients - 1);
    CHECK(ids.size() == 1);
    CHECK(count_key(s.pg_url, idem) == 1);
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == rounds);

  // Every answer came after the broker's confirm, so the queue holds all
  // that was published: one message per job.
  amqp_connection broker(parse_amqp_url(s.amqp_url), 30);
  CHECK(wait_until([&] { return inspect_queue(broker, "processing").messages == rounds; }, 10s));
  CHECK(inspect_queue(broker, "processing").messages == rounds);

  p.add_worker("processing");
  CHECK(wait_until([&] { return succeeded(s.pg_url, rounds); }, 30s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == rounds);
}

TEST_CASE("tenants use the same key independently") {
  scratch s;
  platform p(s);
  auto acme = create_key(s.pg_url, "acme");
  auto globex = create_key(s.pg_url, "globex");
  http_client h(p.port);

  auto a = post(h, acme, hash_body, "shared");
  auto g = post(h, globex, hash_body, "shared");
  REQUIRE(a.status == 202);
  REQUIRE(g.status == 202);
  CHECK(id_of(a) != id_of(g));
  // Each tenant's replay is its own job; another body is fine in another tenant.
  CHECK(id_of(post(h, acme, hash_body, "shared")) == id_of(a));
  CHECK(id_of(post(h, globex, hash_body, "shared")) == id_of(g));
  auto other = post(h, create_key(s.pg_url, "initech"),
                    R"({"queue":"processing","type":"noop","payload":{}})", "shared");
  CHECK(other.status == 202);
  CHECK(count_key(s.pg_url, "shared") == 3);
  CHECK(wait_until([&] { return succeeded(s.pg_url, 3); }, 30s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 3);
}

TEST_CASE("an expired key is free again, and expired keys are swept") {
  scratch s;
  constexpr int ttl_ms = 2000;
  platform p(s, {"processing"}, {{"JOBS_IDEMPOTENCY_TTL_MS", std::to_string(ttl_ms)}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto older_than_ttl = [&](const std::string& id) {
    return count(s.pg_url, fmt::format("SELECT count(*) FROM jobs WHERE id = '{}' AND created_at "
                                       "< now() - interval '{} milliseconds'",
                                       id, ttl_ms)) == 1;
  };

  auto first = post(h, key, hash_body, "order-7");
  REQUIRE(first.status == 202);
  auto old_id = id_of(first);
  auto replay = post(h, key, hash_body, "order-7");
  CHECK(replay.status == 200);
  CHECK(id_of(replay) == old_id);

  // Past the TTL the key names nothing: the same request is a new job.
  REQUIRE(wait_until([&] { return older_than_ttl(old_id); }, 10s));
  auto second = post(h, key, hash_body, "order-7");
  CHECK(second.status == 202);
  auto new_id = id_of(second);
  CHECK(new_id != old_id);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 2);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE idempotency_key = 'order-7' AND id = '" +
                            new_id + "'") == 1);
  // A different request with the expired key is no conflict either.
  REQUIRE(wait_until([&] { return older_than_ttl(new_id); }, 10s));
  CHECK(post(h, key, R"({"queue":"processing","type":"noop","payload":{}})", "order-7").status ==
        202);

  // Without any submission, the sweep clears keys past their TTL.
  auto swept = post(h, key, hash_body, "to-be-swept");
  REQUIRE(swept.status == 202);
  CHECK(wait_until([&] { return count_key(s.pg_url, "to-be-swept") == 0; }, 15s));
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM jobs WHERE idempotency_key IS NULL AND "
              "request_hash IS NOT NULL") == 0);
  CHECK(wait_until([&] { return succeeded(s.pg_url, 4); }, 30s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM job_attempts") == 4);
}
