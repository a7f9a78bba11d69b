// Cancellation and timeouts in common/store.hpp, against a live PostgreSQL:
// cancel_job is a compare-and-set under the row lock, a running job's cancel
// request reaches its worker (NOTIFY, and on lease renewal), and a completion
// after a request ends the job cancelled unless the handler succeeded.
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::string insert(pqxx::connection& c, const std::string& tenant, int timeout_ms = 0,
                   job_state state = job_state::queued) {
  auto j = sample_job(tenant);
  j.timeout_ms = timeout_ms;
  j.state = state;
  if (state == job_state::scheduled) j.run_at = "2099-01-01T00:00:00Z";
  pqxx::work w(c);
  std::vector<new_job> rows{j};
  insert_jobs(w, rows);
  w.commit();
  return j.id.value;
}

std::string field(pqxx::connection& c, const std::string& id, const std::string& expr) {
  pqxx::nontransaction n(c);
  auto v = n.exec_params("SELECT (" + expr + ")::text FROM jobs WHERE id = $1::uuid", id)[0][0];
  return v.is_null() ? "null" : v.as<std::string>();
}

cancel_outcome cancel(pqxx::connection& c, const std::string& tenant, const std::string& id) {
  pqxx::work w(c);
  auto r = cancel_job(w, tenant_id{tenant}, job_id{id});
  w.commit();
  return r;
}

std::vector<claimed_job> claim(pqxx::connection& c, const std::string& id,
                               const std::string& worker = "w1") {
  pqxx::work w(c);
  std::vector<std::string> ids{id};
  auto r = claim_jobs(w, ids, worker, 60s);
  w.commit();
  return r;
}

std::vector<std::string> complete(pqxx::connection& c, const job_outcome& o) {
  pqxx::work w(c);
  std::vector<job_outcome> os{o};
  auto r = complete_jobs(w, os, "w1");
  w.commit();
  return r;
}

struct collector final : pqxx::notification_receiver {
  std::vector<std::string> got;
  explicit collector(pqxx::connection_base& c) : pqxx::notification_receiver(c, cancel_channel) {}
  void operator()(const std::string& payload, int) override { got.push_back(payload); }
};

}  // namespace

TEST_CASE("a queued, scheduled or failed job is cancelled at once, for good") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  for (auto state : {job_state::queued, job_state::scheduled, job_state::failed}) {
    CAPTURE(to_string(state));
    auto id = insert(*c, "acme", 0, state == job_state::failed ? job_state::queued : state);
    if (state == job_state::failed) {
      REQUIRE(claim(*c, id).size() == 1);
      REQUIRE(complete(*c, {id, 1, job_state::failed, "", "boom", "2000-01-01T00:00:00Z"}).size() ==
              1);
      REQUIRE(field(*c, id, "state") == "failed");
    }
    auto r = cancel(*c, "acme", id);
    CHECK(r.result == cancel_result::cancelled);
    CHECK(r.state == state);
    CHECK(field(*c, id, "state") == "cancelled");
    CHECK(field(*c, id, "cancelled_at IS NOT NULL AND finished_at IS NOT NULL") == "true");
    // Its message, delivered later (a failed one is even due): not claimable.
    CHECK(claim(*c, id).empty());
    CHECK(field(*c, id, "state") == "cancelled");
    // Twice: already final.
    auto again = cancel(*c, "acme", id);
    CHECK(again.result == cancel_result::not_cancellable);
    CHECK(again.state == job_state::cancelled);
  }
}

TEST_CASE("only the owner's cancel finds the job; finished jobs are not cancellable") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, "acme");
  CHECK(cancel(*c, "globex", id).result == cancel_result::not_found);
  CHECK(cancel(*c, "acme", "not-a-uuid").result == cancel_result::not_found);
  CHECK(cancel(*c, "acme", new_job_id().value).result == cancel_result::not_found);
  CHECK(field(*c, id, "state") == "queued");

  REQUIRE(claim(*c, id).size() == 1);
  REQUIRE(complete(*c, {id, 1, job_state::succeeded, "{}", "", ""}).size() == 1);
  auto r = cancel(*c, "acme", id);
  CHECK(r.result == cancel_result::not_cancellable);
  CHECK(r.state == job_state::succeeded);
  CHECK(field(*c, id, "state") == "succeeded");
  CHECK(field(*c, id, "cancel_requested_at") == "null");
}

TEST_CASE("cancelling a running job notifies its worker and ends it cancelled") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto worker_conn = pg_connect(s.pg_url);
  collector listening(*worker_conn);
  auto id = insert(*c, "acme");
  REQUIRE(claim(*c, id).size() == 1);

  auto r = cancel(*c, "acme", id);
  CHECK(r.result == cancel_result::requested);
  CHECK(r.state == job_state::running);
  CHECK(field(*c, id, "state") == "running");
  CHECK(field(*c, id, "cancel_requested_at IS NOT NULL") == "true");
  CHECK(wait_until(
      [&] {
        worker_conn->get_notifs();
        return !listening.got.empty();
      },
      5s));
  CHECK(listening.got == std::vector<std::string>{id});

  // A worker that missed the NOTIFY learns it when it renews its lease.
  {
    pqxx::work w(*c);
    std::vector<std::string> ids{id};
    auto r = extend_leases(w, ids, "w1", 60s);
    CHECK(r.extended == ids);
    CHECK(r.cancel_requested == ids);
  }

  SUBCASE("a handler that stops on request: the attempt ends cancelled") {
    REQUIRE(complete(*c, {id, 1, job_state::cancelled, "", "cancelled while running", ""}).size() ==
            1);
  }
  SUBCASE("a worker that missed the request records a failure: it lands as cancelled") {
    REQUIRE(complete(*c, {id, 1, job_state::failed, "", "boom", "2000-01-01T00:00:00Z"}).size() ==
            1);
  }
  SUBCASE("a snooze after the request lands as cancelled too") {
    REQUIRE(complete(*c, {id, 1, job_state::scheduled, "", "", "2000-01-01T00:00:00Z"}).size() ==
            1);
    CHECK(field(*c, id, "attempts") == "1");
  }
  CHECK(field(*c, id, "state") == "cancelled");
  CHECK(field(*c, id, "cancelled_at IS NOT NULL AND finished_at IS NOT NULL") == "true");
  CHECK(field(*c, id,
              "(SELECT string_agg(outcome::text, ',') FROM job_attempts WHERE job_id = jobs.id)") ==
        "cancelled");
  CHECK(claim(*c, id).empty());
}

TEST_CASE("a handler that finished despite a cancel request succeeds") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, "acme");
  REQUIRE(claim(*c, id).size() == 1);
  REQUIRE(cancel(*c, "acme", id).result == cancel_result::requested);
  REQUIRE(complete(*c, {id, 1, job_state::succeeded, R"({"ok":true})", "", ""}).size() == 1);
  CHECK(field(*c, id, "state") == "succeeded");
  CHECK(field(*c, id, "cancelled_at") == "null");
  CHECK(cancel(*c, "acme", id).result == cancel_result::not_cancellable);
}

TEST_CASE("a cancel request committed while the completion waits for the row is seen by it") {
  // The completion does not lock its rows first: its UPDATE waits for the
  // request's transaction and computes the outcome from the row it commits.
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, "acme");
  REQUIRE(claim(*c, id).size() == 1);
  auto other = pg_connect(s.pg_url);
  pqxx::work request(*other);
  REQUIRE(cancel_job(request, tenant_id{"acme"}, job_id{id}).result == cancel_result::requested);
  std::vector<std::string> landed;
  std::thread completion([&] {
    auto own = pg_connect(s.pg_url);
    landed = complete(*own, {id, 1, job_state::failed, "", "boom", "2000-01-01T00:00:00Z"});
  });
  // The completion's UPDATE is now blocked on the row the request holds.
  auto waiting = [&] {
    pqxx::nontransaction n(*c);
    return n.exec(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                "query LIKE '%UPDATE jobs j%'")[0][0]
               .as<int>() > 0;
  };
  for (int i = 0; i < 500 && !waiting(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(waiting());
  request.commit();
  completion.join();
  CHECK(landed.size() == 1);
  CHECK(field(*c, id, "state") == "cancelled");
  CHECK(field(*c, id, "cancelled_at IS NOT NULL") == "true");
  CHECK(field(*c, id, "finished_at IS NOT NULL") == "true");
}

TEST_CASE("a running job whose cancel was requested and whose worker died ends cancelled") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, "acme");
  REQUIRE(claim(*c, id).size() == 1);
  REQUIRE(cancel(*c, "acme", id).result == cancel_result::requested);
  {
    pqxx::nontransaction n(*c);
    n.exec_params(
        "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1::uuid", id);
  }
  // Another worker does not take it over.
  CHECK(claim(*c, id, "w2").empty());
  auto queued_at = field(*c, id, "queued_at::text");
  // The rescuer ends it cancelled rather than running it again.
  pqxx::work w(*c);
  auto lost = lock_lost_jobs(w, 10);
  REQUIRE(lost.size() == 1);
  std::vector<std::string> ids{id};
  rescue_lost_jobs(w, ids, job_state::queued);
  w.commit();
  CHECK(field(*c, id, "state") == "cancelled");
  CHECK(field(*c, id,
              "(SELECT string_agg(outcome::text, ',') FROM job_attempts WHERE job_id = jobs.id)") ==
        "cancelled");
  // Not queued again, not failed: only its end is stamped.
  CHECK(field(*c, id, "queued_at::text") == queued_at);
  CHECK(field(*c, id, "failed_at IS NULL") == "true");
  CHECK(field(*c, id, "cancelled_at IS NOT NULL AND finished_at IS NOT NULL") == "true");
}

TEST_CASE("a job's timeout_ms is stored and returned with its claim; 0 means the default") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto with = insert(*c, "acme", 300);
  auto without = insert(*c, "acme");
  auto a = claim(*c, with);
  REQUIRE(a.size() == 1);
  CHECK(a[0].timeout_ms == 300);
  auto b = claim(*c, without);
  REQUIRE(b.size() == 1);
  CHECK(b[0].timeout_ms == 0);
  CHECK(field(*c, without, "timeout_ms") == "null");
}
