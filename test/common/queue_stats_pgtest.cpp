// ctest-labels: scaling
// common/queue_stats.hpp against a live PostgreSQL: the signal's database
// side, the supervisors' pool rows, the JSON.
#include "common/db.hpp"
#include "common/queue_stats.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> insert_n(pqxx::connection& c, int n) {
  std::vector<new_job> rows;
  for (int i = 0; i < n; ++i) rows.push_back(sample_job("acme"));
  pqxx::work w(c);
  insert_jobs(w, rows);
  w.commit();
  std::vector<std::string> ids;
  for (const auto& j : rows) ids.push_back(j.id.value);
  return ids;
}

const queue_stats& find(const std::vector<queue_stats>& all, const std::string& name) {
  for (const auto& q : all)
    if (q.name == name) return q;
  FAIL("no queue " << name);
  return all.front();
}

}  // namespace

TEST_CASE("unacked, completion rate and oldest age come from the jobs") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto ids = insert_n(*c, 10);
  {
    // 3 claimed (running), 2 of them completed.
    pqxx::work w(*c);
    std::vector<std::string> three(ids.begin(), ids.begin() + 3);
    auto claimed = claim_jobs(w, three, "w1", 60s);
    REQUIRE(claimed.size() == 3);
    std::vector<job_outcome> done;
    for (int i = 0; i < 2; ++i)
      done.push_back({.id = claimed[i].id, .attempt = claimed[i].attempt, .result_json = "{}"});
    REQUIRE(complete_jobs(w, done, "w1").size() == 2);
    w.exec("UPDATE jobs SET queued_at = now() - interval '42 seconds' WHERE id = '" + ids[5] + "'");
    w.commit();
  }
  // The broker holds 4 of the 7 queued: 3 are prefetched by a worker.
  auto all = read_queue_stats(*c, {{"processing", {.ready = 4, .consumers = 2}}}, {});
  REQUIRE(all.size() == 3);
  const auto& p = find(all, "processing");
  CHECK(p.ready == 4);
  CHECK(p.consumers == 2);
  CHECK(p.unacked == 1 + 3);  // one running, three prefetched
  CHECK(p.completed_per_s == doctest::Approx(2.0 / rate_window.count()));
  CHECK(p.oldest_waiting_age_s == doctest::Approx(42).epsilon(0.05));
  CHECK_FALSE(p.supervised);
  CHECK(p.running == 2);  // the consumers, without a supervisor
  CHECK(find(all, "email").unacked == 0);
  CHECK(find(all, "email").oldest_waiting_age_s == 0);
  // More ready than queued jobs (messages of cancelled jobs): never negative.
  auto over = read_queue_stats(*c, {{"processing", {.ready = 50}}}, {});
  CHECK(find(over, "processing").unacked == 1);
}

TEST_CASE("live supervisors' rows give running workers and the newest policy") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  scaling_policy a;
  a.min_workers = 2;
  a.max_workers = 6;
  a.target_backlog_per_worker = 5;
  write_pool_heartbeat(*c, "sup-a", "processing", 3, 3, a, 60s);
  {
    pqxx::work w(*c);
    w.exec("UPDATE worker_pools SET heartbeat_at = now() - interval '1 second'");
    w.commit();
  }
  auto b = a;
  b.max_workers = 8;
  write_pool_heartbeat(*c, "sup-b", "processing", 1, 3, b, 60s);
  write_pool_heartbeat(*c, "sup-c", "email", 5, 5, b, -1s);  // expired
  insert_n(*c, 30);
  auto all = read_queue_stats(*c, {{"processing", {.ready = 30, .consumers = 4}}}, {});
  const auto& p = find(all, "processing");
  CHECK(p.supervised);
  CHECK(p.running == 4);
  CHECK(p.policy.max_workers == 8);
  CHECK(p.policy.min_workers == 2);
  CHECK(p.desired == 6);  // 30 / 5
  CHECK_FALSE(find(all, "email").supervised);

  auto json = boost::json::parse(queue_stats_json(all, 7));
  CHECK(json.at("dead_letters") == 7);
  const auto& q = json.at("queues").as_array();
  REQUIRE(q.size() == 3);
  auto proc =
      std::find_if(q.begin(), q.end(), [](auto& v) { return v.at("name") == "processing"; });
  REQUIRE(proc != q.end());
  CHECK(proc->at("workers").at("desired") == 6);
  CHECK(proc->at("workers").at("max") == 8);
  CHECK(proc->at("ready") == 30);

  delete_pool_heartbeats(*c, "sup-b");
  CHECK(find(read_queue_stats(*c, {}, {}), "processing").running == 3);
}
