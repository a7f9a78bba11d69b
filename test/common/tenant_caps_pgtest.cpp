// common/tenant_caps.hpp against a live PostgreSQL: the cap holds when many
// claimers race, a deferred job keeps its attempts, overrides apply.
// ctest-labels: security
#include "common/db.hpp"
#include "common/store.hpp"
#include "common/tenant_caps.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> insert_many(const std::string& pg_url, const std::string& tenant, int n) {
  std::vector<new_job> rows;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    rows.push_back(sample_job(tenant));
    ids.push_back(rows.back().id.value);
  }
  auto c = pg_connect(pg_url);
  pqxx::work w(*c);
  insert_jobs(w, rows);
  w.commit();
  return ids;
}

capped_claim claim(pqxx::connection& c, const std::vector<std::string>& ids, int cap,
                   const std::string& worker = "w") {
  pqxx::work w(c);
  auto r = claim_jobs_capped(w, ids, worker, 60s, tenant_caps{cap, 5000ms});
  w.commit();
  return r;
}

long running(const std::string& pg_url, const std::string& tenant) {
  return count(
      pg_url, "SELECT count(*) FROM jobs WHERE state = 'running' AND tenant_id = '" + tenant + "'");
}

}  // namespace

TEST_CASE("a claim over the cap defers the rest of the tenant's jobs, not the other tenants'") {
  scratch s;
  auto a = insert_many(s.pg_url, "alpha", 5);
  auto b = insert_many(s.pg_url, "bravo", 2);
  auto c = pg_connect(s.pg_url);
  std::vector<std::string> ids = a;
  ids.insert(ids.end(), b.begin(), b.end());
  auto r = claim(*c, ids, 2);
  CHECK(r.claimed.size() == 4);  // two of alpha's, both of bravo's
  CHECK(r.deferred.size() == 3);
  CHECK(running(s.pg_url, "alpha") == 2);
  CHECK(running(s.pg_url, "bravo") == 2);
  for (const auto& id : r.deferred) {
    CHECK(std::find(a.begin(), a.end(), id) != a.end());
    // Scheduled a little later, attempt not counted.
    CHECK(count(s.pg_url, fmt::format("SELECT count(*) FROM jobs WHERE id = '{}' AND state = "
                                      "'scheduled' AND attempts = 0 AND run_at > now() + "
                                      "interval '3 s'",
                                      id)) == 1);
  }
  for (const auto& j : r.claimed) CHECK(j.attempt == 1);

  // The holder's own claim again (its commit went unconfirmed) takes its
  // running jobs back, uncounted, within the cap; another worker gets none.
  std::vector<std::string> held;
  for (const auto& j : r.claimed) held.push_back(j.id);
  CHECK(claim(*c, held, 2, "other").claimed.empty());
  auto back = claim(*c, held, 2, "w");
  CHECK(back.claimed.size() == 4);
  CHECK(back.deferred.empty());
  for (const auto& j : back.claimed) CHECK(j.attempt == 1);

  // alpha is full: another claim of its deferred jobs (now due) defers again.
  pqxx::nontransaction(*c).exec("UPDATE jobs SET run_at = now() WHERE state = 'scheduled'");
  auto again = claim(*c, r.deferred, 2);
  CHECK(again.claimed.empty());
  CHECK(again.deferred.size() == 3);

  // Caps off: the plain claim, nothing deferred.
  pqxx::nontransaction(*c).exec("UPDATE jobs SET run_at = now() WHERE state = 'scheduled'");
  auto off = claim(*c, r.deferred, 0);
  CHECK(off.claimed.size() == 3);
  CHECK(off.deferred.empty());
}

TEST_CASE("a holder's own running jobs come back within its claim before new ones take the room") {
  // The claim's commit went unconfirmed, so the worker claims its jobs again,
  // beside a new job that sorts first (a higher priority): the held ones are
  // running already and come back; the new one is over the cap, deferred.
  scratch s;
  auto a = insert_many(s.pg_url, "alpha", 3);
  auto c = pg_connect(s.pg_url);
  std::vector<std::string> held{a[0], a[1]};
  REQUIRE(claim(*c, held, 2).claimed.size() == 2);
  pqxx::nontransaction(*c).exec("UPDATE jobs SET priority = 10 WHERE id = '" + a[2] + "'");
  auto r = claim(*c, {a[2], a[0], a[1]}, 2);
  CHECK(r.claimed.size() == 2);
  for (const auto& j : r.claimed) {
    CHECK(j.id != a[2]);
    CHECK(j.attempt == 1);
  }
  CHECK(r.deferred == std::vector<std::string>{a[2]});
  CHECK(running(s.pg_url, "alpha") == 2);
}

TEST_CASE("a tenant_limits row overrides the default cap, 0 there meaning none") {
  scratch s;
  {
    auto c = pg_connect(s.pg_url);
    pqxx::nontransaction n(*c);
    n.exec("INSERT INTO tenant_limits (tenant_id, max_running) VALUES ('big', 4), ('free', 0)");
  }
  auto big = insert_many(s.pg_url, "big", 6);
  auto uncapped = insert_many(s.pg_url, "free", 6);
  auto c = pg_connect(s.pg_url);
  CHECK(claim(*c, big, 1).claimed.size() == 4);
  CHECK(claim(*c, uncapped, 1).claimed.size() == 6);
}

TEST_CASE("racing claimers on separate connections never exceed the cap together") {
  scratch s;
  constexpr int cap = 3, claimers = 8;
  auto ids = insert_many(s.pg_url, "alpha", 64);
  std::atomic<int> claimed{0}, errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < claimers; ++t)
    ts.emplace_back([&, t] {
      try {
        auto c = pg_connect(s.pg_url);
        // Each takes its own slice of 8, all at once.
        std::vector<std::string> mine(ids.begin() + t * 8, ids.begin() + t * 8 + 8);
        claimed += static_cast<int>(claim(*c, mine, cap, fmt::format("w{}", t)).claimed.size());
      } catch (const std::exception& e) {
        MESSAGE(e.what());
        ++errors;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(errors == 0);
  CHECK(claimed == cap);
  CHECK(running(s.pg_url, "alpha") == cap);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'scheduled'") == 64 - cap);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts > 0") == cap);
}
