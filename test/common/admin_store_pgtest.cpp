// common/admin_store.hpp against a live PostgreSQL: the queue history counts
// submissions from the jobs rows, since a submission into `queued` writes no
// event row (migration 0020), and the rest from the events.
#include "common/admin_store.hpp"
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <memory>

using namespace jobs;
using namespace jobs::test;

TEST_CASE("the queue history counts every submission, with an event row or without") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  std::vector<new_job> rows;
  for (int i = 0; i < 3; ++i) rows.push_back(sample_job("acme"));
  for (int i = 0; i < 2; ++i) {
    auto j = sample_job("acme");
    j.state = job_state::scheduled;
    j.run_at = "2999-01-01T00:00:00Z";
    rows.push_back(j);
  }
  {
    pqxx::work w(*c);
    REQUIRE(insert_jobs(w, rows).size() == rows.size());
    REQUIRE(cancel_job(w, tenant_id{"acme"}, rows[0].id).result == cancel_result::cancelled);
    w.commit();
  }
  auto n = std::make_unique<pqxx::nontransaction>(*c);
  // Only the scheduled submissions and the cancel are event rows.
  CHECK(n->exec("SELECT count(*) FROM job_events WHERE from_state IS NULL")[0][0].as<int>() == 2);
  CHECK(n->exec("SELECT count(*) FROM job_events")[0][0].as<int>() == 3);

  // The last point 50 minutes back, everything 20 minutes back: the next
  // point's window [last + 10 s, this bucket) holds it all, whenever the
  // clock crosses a bucket's edge during the test.
  n->exec(
      "INSERT INTO queue_history (queue, resolution, bucket, scheduled, ready, running, "
      "submitted, succeeded, failed, dead, cancelled) VALUES ('processing', 10, "
      "date_bin('10 seconds', now() - interval '50 minutes', 'epoch'), 0, 0, 0, 0, 0, 0, 0, 0)");
  n->exec("UPDATE jobs SET created_at = now() - interval '20 minutes'");
  n->exec("UPDATE job_events SET at = now() - interval '20 minutes'");
  n.reset();
  REQUIRE(sample_queue_history(*c));
  pqxx::nontransaction r(*c);
  auto point = r.exec(
      "SELECT submitted, cancelled, ready, scheduled FROM queue_history "
      "WHERE queue = 'processing' AND resolution = 10 ORDER BY bucket DESC LIMIT 1");
  REQUIRE(point.size() == 1);
  CHECK(point[0][0].as<int>() == 5);
  CHECK(point[0][1].as<int>() == 1);
  CHECK(point[0][2].as<int>() == 2);
  CHECK(point[0][3].as<int>() == 2);
}
