// api/api_metrics.hpp's job counts against a live PostgreSQL: the states a
// job is still in are counted at every scrape, from their indexes; the final
// states, a scan of the whole table, at most every final_every.
#include "api/api_metrics.hpp"
#include "common/db.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// `n` processing jobs in `state`, straight into the table.
void add_jobs(pqxx::connection& c, int n, const std::string& state) {
  pqxx::nontransaction w(c);
  w.exec_params(R"(INSERT INTO jobs (id, tenant_id, queue, type, payload, state, queued_at)
                   SELECT gen_random_uuid(), 'acme', 'processing', 'noop', '{}', $2::job_state,
                          now() - interval '30 seconds'
                   FROM generate_series(1, $1))",
                n, state);
}

double in_state(api_metrics& m, const char* state) {
  return m.in_state.with({"processing", state}).value();
}

}  // namespace

TEST_CASE("jobs_in_state: open states at every scrape, final states at most every final_every") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  metrics::registry reg;
  api_metrics m(reg);
  m.final_every = 60s;
  add_jobs(*c, 3, "queued");
  add_jobs(*c, 2, "running");
  add_jobs(*c, 1, "failed");
  add_jobs(*c, 4, "succeeded");
  add_jobs(*c, 1, "dead");

  auto t0 = std::chrono::steady_clock::now();
  m.read_job_counts(*c, t0);
  CHECK(in_state(m, "queued") == 3);
  CHECK(in_state(m, "running") == 2);
  CHECK(in_state(m, "failed") == 1);
  CHECK(in_state(m, "scheduled") == 0);
  CHECK(in_state(m, "succeeded") == 4);
  CHECK(in_state(m, "dead") == 1);
  CHECK(in_state(m, "cancelled") == 0);
  CHECK(m.depth.with({"processing"}).value() == 3);
  CHECK(m.oldest_age.with({"processing"}).value() >= 29);
  CHECK(m.in_state.with({"email", "succeeded"}).value() == 0);

  add_jobs(*c, 5, "queued");
  add_jobs(*c, 6, "succeeded");
  // Within final_every: the open states move, the final ones keep their values.
  m.read_job_counts(*c, t0 + 59s);
  CHECK(in_state(m, "queued") == 8);
  CHECK(m.depth.with({"processing"}).value() == 8);
  CHECK(in_state(m, "succeeded") == 4);
  // Past it, a read that fails (here: no jobs table on its search path)
  // does not put the recount off.
  auto broken = pg_connect(s.pg_url);
  pqxx::nontransaction(*broken).exec("SET search_path = nowhere");
  CHECK_THROWS(m.read_job_counts(*broken, t0 + 60s));
  m.read_job_counts(*c, t0 + 61s);
  CHECK(in_state(m, "succeeded") == 10);
  // 0: at every scrape.
  m.final_every = 0s;
  add_jobs(*c, 1, "cancelled");
  m.read_job_counts(*c, t0 + 61s);
  CHECK(in_state(m, "cancelled") == 1);
}

TEST_CASE("the per-scrape count reads the open jobs' indexes, not the table") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_jobs(*c, 30000, "succeeded");
  add_jobs(*c, 20, "queued");
  add_jobs(*c, 10, "running");
  add_jobs(*c, 5, "failed");
  pqxx::nontransaction n(*c);
  n.exec("VACUUM ANALYZE jobs");
  auto plan = n.exec("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " +
                     api_metrics::open_counts_statement())[0][0]
                  .as<std::string>();
  auto read = plan_pages(s.pg_url, plan, "jobs");
  INFO(plan);
  INFO("blocks read: " << read.blocks << ", table: " << read.table);
  CHECK(read.blocks * 10 < read.table);
}
