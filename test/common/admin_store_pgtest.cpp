// common/admin_store.hpp against a live PostgreSQL: the queue history counts
// submissions from the jobs rows (created_at, found by their UUIDv7 ids),
// since a submission into `queued` writes no event row, and the rest from
// the events.
#include "common/admin_store.hpp"
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <memory>

using namespace jobs;
using namespace jobs::test;

namespace {

// A job whose UUIDv7 id carries `ms` (Unix milliseconds) in its first 48 bits.
new_job job_made(long long ms, job_state state = job_state::queued) {
  auto j = sample_job("acme");
  char hex[13];
  std::snprintf(hex, sizeof hex, "%012llx", ms);
  j.id.value.replace(0, 8, hex, 8);  // xxxxxxxx-xxxx-7xxx-...
  j.id.value.replace(9, 4, hex + 8, 4);
  j.state = state;
  if (state == job_state::scheduled) j.run_at = "2999-01-01T00:00:00Z";
  return j;
}

// `n` queued jobs of tenant acme, the first `running` of them running under a lease.
std::vector<new_job> acme_jobs(pqxx::connection& c, int n, int running) {
  std::vector<new_job> rows;
  for (int i = 0; i < n; ++i) rows.push_back(sample_job("acme"));
  pqxx::work w(c);
  REQUIRE(insert_jobs(w, rows).size() == rows.size());
  std::string ids = "{";
  for (int i = 0; i < running; ++i)
    ids += (i ? "," : "") + rows[static_cast<std::size_t>(i)].id.value;
  w.exec_params(
      "UPDATE jobs SET state = 'running', started_at = now(), attempts = 1, "
      "lease_expires_at = now() + interval '1 minute' WHERE id = ANY($1::uuid[])",
      ids + "}");
  w.commit();
  return rows;
}

}  // namespace

TEST_CASE("the queue history counts every submission, with an event row or without") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto n = std::make_unique<pqxx::nontransaction>(*c);
  // The last point 50 minutes back: the next point's window is [its end,
  // this bucket), whenever the clock crosses a bucket's edge in the test.
  auto start = n->exec1(
                    "INSERT INTO queue_history (queue, resolution, bucket, scheduled, ready, "
                    "running, submitted, succeeded, failed, dead, cancelled) VALUES "
                    "('processing', 10, date_bin('10 seconds', now() - interval '50 minutes', "
                    "'epoch'), 0, 0, 0, 0, 0, 0, 0, 0) "
                    "RETURNING (extract(epoch FROM bucket) * 1000)::bigint + 10000")[0]
                   .as<long long>();
  auto now = n->exec1("SELECT (extract(epoch FROM now()) * 1000)::bigint")[0].as<long long>();
  n.reset();

  // {job, created_at in ms}: five a minute into the window (two scheduled);
  // one whose id is 5 s older than the window (made before a slow commit, or
  // on a clock behind the database's) but created in it; one with an id in
  // the window but created before it; one created in the future.
  std::vector<std::pair<new_job, long long>> made;
  for (int i = 0; i < 3; ++i) made.emplace_back(job_made(start + 60000), start + 60000);
  for (int i = 0; i < 2; ++i)
    made.emplace_back(job_made(start + 60000, job_state::scheduled), start + 60000);
  made.emplace_back(job_made(start - 5000), start + 1000);
  made.emplace_back(job_made(start + 60000), start - 1000);
  made.emplace_back(job_made(now), now + 3600000);
  {
    pqxx::work w(*c);
    std::vector<new_job> rows;
    for (const auto& [j, at] : made) rows.push_back(j);
    REQUIRE(insert_jobs(w, rows).size() == rows.size());
    for (const auto& [j, at] : made)
      w.exec_params("UPDATE jobs SET created_at = to_timestamp($2 / 1000.0) WHERE id = $1::uuid",
                    j.id.value, at);
    REQUIRE(cancel_job(w, tenant_id{"acme"}, made[0].first.id).result == cancel_result::cancelled);
    w.exec_params("UPDATE job_events SET at = to_timestamp($1 / 1000.0)", start + 60000);
    w.commit();
  }
  {
    pqxx::nontransaction r(*c);
    // Only the scheduled submissions and the cancel are event rows.
    CHECK(r.exec("SELECT count(*) FROM job_events WHERE from_state IS NULL")[0][0].as<int>() == 2);
    CHECK(r.exec("SELECT count(*) FROM job_events")[0][0].as<int>() == 3);
  }
  REQUIRE(sample_queue_history(*c));
  pqxx::nontransaction r(*c);
  auto point = r.exec(
      "SELECT submitted, cancelled, ready, scheduled FROM queue_history "
      "WHERE queue = 'processing' AND resolution = 10 ORDER BY bucket DESC LIMIT 1");
  REQUIRE(point.size() == 1);
  CHECK(point[0][0].as<int>() == 6);
  CHECK(point[0][1].as<int>() == 1);
  CHECK(point[0][2].as<int>() == 5);  // the depths are now's: 6 queued, 1 of them cancelled
  CHECK(point[0][3].as<int>() == 2);
}

TEST_CASE("a bulk cancel counts what it will change: not a running job already asked to stop") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  tenant_id acme{"acme"};
  // Two running, one of them already asked to stop.
  auto rows = acme_jobs(*c, 4, 2);
  pqxx::nontransaction(*c).exec_params(
      "UPDATE jobs SET cancel_requested_at = now() WHERE id = $1::uuid", rows[0].id.value);
  job_filter all;
  CHECK(count_bulk(*c, acme, all, bulk_action::cancel) == 3);
  auto out = apply_bulk(*c, acme, all, bulk_action::cancel, {});
  CHECK(out.applied == 3);
  CHECK(out.complete);
  CHECK(count_bulk(*c, acme, all, bulk_action::cancel) == 0);
}

TEST_CASE("a bulk cancel over its cap with running jobs left is not complete") {
  // Three scheduled and one running, at most three a request: the first step
  // takes the three, and the running one, a later step's, is still left.
  scratch s;
  auto c = pg_connect(s.pg_url);
  tenant_id acme{"acme"};
  acme_jobs(*c, 4, 1);
  job_filter all;
  auto first = apply_bulk(*c, acme, all, bulk_action::cancel, {.batch = 2, .max_jobs = 3});
  CHECK(first.applied == 3);
  CHECK_FALSE(first.complete);
  auto second = apply_bulk(*c, acme, all, bulk_action::cancel, {.batch = 2, .max_jobs = 3});
  CHECK(second.applied == 1);
  CHECK(second.complete);
}

TEST_CASE("a bulk retry takes only jobs unchanged since it started, each once") {
  // A job retried by this call that fails again before the loop ends has
  // changed since the call started (updated_at): it is not taken again. Here
  // one dead job "changed" a minute from now stands for it.
  scratch s;
  auto c = pg_connect(s.pg_url);
  tenant_id acme{"acme"};
  auto rows = acme_jobs(*c, 3, 0);
  {
    pqxx::work w(*c);
    w.exec(
        "UPDATE jobs SET state = 'dead', attempts = 1, finished_at = now(), failed_at = now(), "
        "updated_at = now() - interval '1 second'");
    w.exec_params("UPDATE jobs SET updated_at = now() + interval '1 minute' WHERE id = $1::uuid",
                  rows[2].id.value);
    w.commit();
  }
  job_filter all;
  auto out = apply_bulk(*c, acme, all, bulk_action::retry, {.batch = 1, .max_jobs = 2});
  CHECK(out.applied == 2);
  CHECK(out.complete);  // the one changed since is not left for this call
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'scheduled' AND life = 2") == 2);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'dead' AND id = '" +
                            rows[2].id.value + "'") == 1);
}

TEST_CASE("pausing a paused queue keeps the time it was paused") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto changed_at = [&] {
    pqxx::nontransaction r(*c);
    return r.exec1("SELECT changed_at::text FROM queue_controls WHERE queue = 'email'")[0]
        .as<std::string>();
  };
  {
    pqxx::work w(*c);
    CHECK(set_queue_paused(w, "email", true, "first"));
    w.commit();
  }
  auto first = changed_at();
  {
    pqxx::work w(*c);
    CHECK_FALSE(set_queue_paused(w, "email", true, "second"));
    w.commit();
  }
  CHECK(changed_at() == first);
  CHECK(queue_paused(*c, "email"));
  {
    pqxx::work w(*c);
    CHECK(set_queue_paused(w, "email", false, "third"));
    w.commit();
  }
  CHECK(changed_at() != first);
  CHECK_FALSE(queue_paused(*c, "email"));
  {
    pqxx::work w(*c);
    CHECK_FALSE(set_queue_paused(w, "webhooks", false, "never paused"));
  }
}
