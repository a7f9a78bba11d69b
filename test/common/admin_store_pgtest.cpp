// common/admin_store.hpp against a live PostgreSQL: the queue history counts
// submissions from the jobs rows, by their UUIDv7 ids, since a submission
// into `queued` writes no event row, and the rest from the events.
#include "common/admin_store.hpp"
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <memory>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// A job whose UUIDv7 id was made `ago` back: its first 48 bits are the time.
new_job job_made(std::chrono::milliseconds ago, job_state state = job_state::queued) {
  auto j = sample_job("acme");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch() - ago)
                .count();
  char hex[13];
  std::snprintf(hex, sizeof hex, "%012llx", static_cast<unsigned long long>(ms));
  j.id.value.replace(0, 8, hex, 8);  // xxxxxxxx-xxxx-7xxx-...
  j.id.value.replace(9, 4, hex + 8, 4);
  j.state = state;
  if (state == job_state::scheduled) j.run_at = "2999-01-01T00:00:00Z";
  return j;
}

}  // namespace

TEST_CASE("the queue history counts every submission, with an event row or without") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  // Five made 20 minutes back, two of them scheduled; one before the
  // window and one in the current bucket, after it.
  std::vector<new_job> rows;
  for (int i = 0; i < 3; ++i) rows.push_back(job_made(20min));
  for (int i = 0; i < 2; ++i) rows.push_back(job_made(20min, job_state::scheduled));
  rows.push_back(job_made(2h));
  rows.push_back(job_made(0ms));
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

  // The last point 50 minutes back: the next point's window is
  // [last + 10 s, this bucket), whenever the clock crosses a bucket's edge
  // during the test. The events are moved into it too.
  n->exec(
      "INSERT INTO queue_history (queue, resolution, bucket, scheduled, ready, running, "
      "submitted, succeeded, failed, dead, cancelled) VALUES ('processing', 10, "
      "date_bin('10 seconds', now() - interval '50 minutes', 'epoch'), 0, 0, 0, 0, 0, 0, 0, 0)");
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
  CHECK(point[0][2].as<int>() == 4);  // the depths are now's: 5 queued, 1 cancelled
  CHECK(point[0][3].as<int>() == 2);
}
