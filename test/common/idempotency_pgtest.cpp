// common/idempotency.hpp and insert_jobs' handling of keys against a live PostgreSQL.
#include "common/db.hpp"
#include "common/idempotency.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

new_job keyed_job(const std::string& tenant, const std::string& key,
                  const std::string& hash = "h1") {
  auto j = sample_job(tenant);
  j.idempotency_key = key;
  j.request_hash = key.empty() ? "" : hash;
  return j;
}

std::vector<std::string> insert(pqxx::connection& c, const std::vector<new_job>& rows) {
  pqxx::work w(c);
  auto ids = insert_jobs(w, rows);
  w.commit();
  return ids;
}

bool contains(const std::vector<std::string>& ids, const new_job& j) {
  return std::find(ids.begin(), ids.end(), j.id.value) != ids.end();
}

long count(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction n(c);
  return n.exec(sql)[0][0].as<long>();
}

void age(pqxx::connection& c, const new_job& j, const std::string& by) {
  pqxx::nontransaction n(c);
  n.exec_params("UPDATE jobs SET created_at = now() - $2::interval WHERE id = $1::uuid", j.id.value,
                by);
}

}  // namespace

TEST_CASE("insert_jobs skips a row whose key its tenant holds, in the same call or before") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto a = keyed_job("acme", "k1"), b = keyed_job("acme", "k1", "h2"),
       other_tenant = keyed_job("globex", "k1"), keyless = keyed_job("acme", ""),
       keyless2 = keyed_job("acme", "");
  auto ids = insert(*c, {a, b, other_tenant, keyless, keyless2});
  CHECK(ids.size() == 4);
  CHECK(contains(ids, a) != contains(ids, b));
  CHECK(contains(ids, other_tenant));
  CHECK(contains(ids, keyless));
  CHECK(contains(ids, keyless2));
  const auto& winner = contains(ids, a) ? a : b;

  auto later = keyed_job("acme", "k1", "h3");
  CHECK(insert(*c, {later}).empty());
  pqxx::work w(*c);
  std::vector<new_job> asked{later, keyed_job("globex", "k1"), keyed_job("acme", "nobody")};
  auto holders = find_key_holders(w, asked);
  REQUIRE(holders.size() == 2);
  std::sort(holders.begin(), holders.end(),
            [](auto& x, auto& y) { return x.tenant.value < y.tenant.value; });
  CHECK(holders[0].id == winner.id);
  CHECK(holders[0].key == "k1");
  CHECK(holders[0].request_hash == winner.request_hash);
  CHECK(holders[0].state == job_state::queued);
  CHECK(holders[1].id == other_tenant.id);
}

TEST_CASE("release_expired_keys frees only the asked keys older than the TTL") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto old = keyed_job("acme", "k1"), young = keyed_job("acme", "k2"),
       not_asked = keyed_job("acme", "k3");
  insert(*c, {old, young, not_asked});
  age(*c, old, "2 hours");
  age(*c, not_asked, "2 hours");
  {
    pqxx::work w(*c);
    std::vector<new_job> asked{keyed_job("acme", "k1"), keyed_job("acme", "k2"),
                               keyed_job("globex", "k3")};
    release_expired_keys(w, asked, 1h);
    w.commit();
  }
  CHECK(count(*c, "SELECT count(*) FROM jobs WHERE idempotency_key IS NULL") == 1);
  CHECK(count(*c, "SELECT count(*) FROM jobs WHERE idempotency_key IS NULL AND id = '" +
                      old.id.value + "' AND request_hash IS NULL") == 1);
  // The freed key is taken by a new job; the young one is still held.
  auto again = keyed_job("acme", "k1"), young_again = keyed_job("acme", "k2");
  auto ids = insert(*c, {again, young_again});
  CHECK(ids == std::vector<std::string>{again.id.value});
}

TEST_CASE("sweep_idempotency_keys clears old keys in bounded batches, oldest first") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  std::vector<new_job> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(keyed_job("acme", "k" + std::to_string(i)));
  rows.push_back(keyed_job("acme", ""));
  insert(*c, rows);
  age(*c, rows[0], "3 hours");
  age(*c, rows[1], "2 hours");
  age(*c, rows[2], "90 minutes");
  age(*c, rows[5], "5 hours");  // keyless: nothing to sweep
  auto sweep = [&](int limit) {
    pqxx::work w(*c);
    int n = sweep_idempotency_keys(w, 1h, limit);
    w.commit();
    return n;
  };
  CHECK(sweep(2) == 2);
  CHECK(count(*c, "SELECT count(*) FROM jobs WHERE idempotency_key IN ('k0', 'k1')") == 0);
  CHECK(count(*c, "SELECT count(*) FROM jobs WHERE idempotency_key = 'k2'") == 1);
  CHECK(sweep(2) == 1);
  CHECK(sweep(2) == 0);
  CHECK(count(*c, "SELECT count(*) FROM jobs WHERE idempotency_key IS NOT NULL") == 2);
  CHECK(count(*c, "SELECT count(*) FROM jobs") == 6);
}

TEST_CASE("group commits holding the same keys in opposite orders wait, never deadlock") {
  // Two API processes' group commits, each one statement: without an order
  // of their own, one inserts k0 then waits for k49, the other k49 then k0,
  // and PostgreSQL fails one of them (40P01), a 503 for all its jobs.
  scratch s;
  auto a = pg_connect(s.pg_url), b = pg_connect(s.pg_url);
  for (int round = 0; round < 20; ++round) {
    std::vector<new_job> up, down;
    for (int i = 0; i < 50; ++i)
      up.push_back(keyed_job("acme", fmt::format("r{}-k{:02}", round, i)));
    for (int i = 49; i >= 0; --i)
      down.push_back(keyed_job("acme", fmt::format("r{}-k{:02}", round, i)));
    std::atomic<int> ready{0};
    auto go = [&](pqxx::connection& c, const std::vector<new_job>& rows) {
      pqxx::work w(c);
      ++ready;
      while (ready < 2) std::this_thread::yield();
      auto ids = insert_jobs(w, rows);
      std::this_thread::sleep_for(5ms);  // hold the keys a moment, as a commit's round trip does
      w.commit();
      return ids.size();
    };
    auto first = std::async(std::launch::async, [&] { return go(*a, up); });
    auto second = std::async(std::launch::async, [&] { return go(*b, down); });
    std::size_t got = 0;
    REQUIRE_NOTHROW(got += first.get());
    REQUIRE_NOTHROW(got += second.get());
    CHECK(got == 50);  // each key once, whichever commit took it
  }
}
