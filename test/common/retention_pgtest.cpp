// common/retention.hpp against a live PostgreSQL: finished jobs past their
// state's retention go, with their attempts and events; nothing else does.
#include "common/db.hpp"
#include "common/retention.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// A job that ran once and ended in `state`, `age` ago.
std::string finished(pqxx::connection& c, const std::string& state, std::chrono::seconds age) {
  auto j = sample_job("acme");
  {
    pqxx::work w(c);
    std::vector<new_job> rows{j};
    insert_jobs(w, rows);
    std::vector<std::string> ids{j.id.value};
    REQUIRE(claim_jobs(w, ids, "w1", 60s).size() == 1);
    std::vector<job_outcome> out{{j.id.value, 1, parse_job_state(state).value(), "", "", ""}};
    REQUIRE(complete_jobs(w, out, "w1").size() == 1);
    w.commit();
  }
  pqxx::work w(c);
  w.exec_params(
      "UPDATE jobs SET finished_at = now() - $2 * interval '1 second' WHERE id = $1::uuid",
      j.id.value, static_cast<long long>(age.count()));
  w.commit();
  return j.id.value;
}

long count(pqxx::connection& c, const std::string& table, const std::string& column,
           const std::string& id) {
  pqxx::nontransaction n(c);
  return n
      .exec_params("SELECT count(*) FROM " + table + " WHERE " + column + " = $1::uuid", id)[0][0]
      .as<long>();
}

}  // namespace

TEST_CASE("finished jobs past their retention go with their attempts and events") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  const auto day = std::chrono::seconds(86400);
  auto old_ok = finished(*c, "succeeded", 8 * day);
  auto new_ok = finished(*c, "succeeded", 6 * day);
  auto old_dead = finished(*c, "dead", 31 * day);
  auto young_dead = finished(*c, "dead", 8 * day);
  auto queued = sample_job("acme");
  {
    pqxx::work w(*c);
    std::vector<new_job> rows{queued};
    insert_jobs(w, rows);
    w.exec_params("UPDATE jobs SET created_at = now() - interval '400 days' WHERE id = $1::uuid",
                  queued.id.value);
    w.commit();
  }
  REQUIRE(count(*c, "job_attempts", "job_id", old_ok) == 1);
  {
    pqxx::work w(*c);  // an event as a cancel or the scheduler writes one
    w.exec_params(
        "INSERT INTO job_events (job_id, queue, from_state, to_state, attempt) "
        "VALUES ($1::uuid, 'processing', 'failed', 'dead', 1)",
        old_dead);
    w.commit();
  }
  REQUIRE(count(*c, "job_events", "job_id", old_dead) == 1);

  retention_policy p;  // the defaults: 7 days, 7 days, 30 days
  p.batch = 1;         // several transactions
  CHECK(prune_finished_jobs(*c, p) == 2);
  for (const auto& gone : {old_ok, old_dead}) {
    CHECK(count(*c, "jobs", "id", gone) == 0);
    CHECK(count(*c, "job_attempts", "job_id", gone) == 0);
    CHECK(count(*c, "job_events", "job_id", gone) == 0);
  }
  for (const auto& kept : {new_ok, young_dead, queued.id.value})
    CHECK(count(*c, "jobs", "id", kept) == 1);
  CHECK(count(*c, "job_attempts", "job_id", new_ok) == 1);
  CHECK(prune_finished_jobs(*c, p) == 0);

  // Zero keeps a state for ever.
  p.succeeded = 0s;
  p.dead = 0s;
  auto ancient = finished(*c, "succeeded", 3650 * day);
  CHECK(prune_finished_jobs(*c, p) == 0);
  CHECK(count(*c, "jobs", "id", ancient) == 1);
}
