// api/submitter.hpp with idempotency keys, against a live PostgreSQL and a
// broker that never answers: a replay of a job whose confirm is pending
// answers only with the original, and shares its fate.
#include "api/submitter.hpp"
#include "common/db.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

new_job keyed_job(const std::string& key, const std::string& hash) {
  new_job j;
  j.id = new_job_id();
  j.tenant = tenant_id{"acme"};
  j.queue = "processing";
  j.type = "noop";
  j.payload_json = "{}";
  j.idempotency_key = key;
  j.request_hash = hash;
  return j;
}

// A submission's result and the order in which it arrived.
struct answer {
  submit_result result;
  int order = 0;
};

struct pending {
  std::promise<answer> promise;
  std::future<answer> future = promise.get_future();
};

// The answer `p` got within `wait`, which must be a 503.
problem refused_503(pending& p, std::chrono::seconds wait) {
  REQUIRE(p.future.wait_for(wait) == std::future_status::ready);
  auto r = p.future.get().result.refused;
  REQUIRE(r);
  CHECK(r->status == 503);
  return *r;
}

// Nothing listens there: every publish runs into the confirm deadline (3 s).
publisher_options no_broker() {
  return {"amqp://guest:guest@127.0.0.1:" + std::to_string(free_port()) + "/", 30, 3000ms};
}

// Submits to `writes`, numbering the answers in the order they arrive.
struct submitting {
  submitter& writes;
  std::atomic<int> order{0};
  void operator()(const new_job& j, pending& p) {
    writes.submit(j, [this, &p](submit_result r) { p.promise.set_value({r, ++order}); });
  }
};

// While on, every DELETE of a job fails (a trigger raising an error): a
// withdrawal cannot land.
void refuse_deletes(const std::string& pg_url, bool on) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  if (!on) {
    n.exec("DROP TRIGGER refuse_delete ON jobs");
    return;
  }
  n.exec(
      "CREATE OR REPLACE FUNCTION test_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
      "$$BEGIN RAISE EXCEPTION 'test: deletes refused'; END$$");
  n.exec(
      "CREATE TRIGGER refuse_delete BEFORE DELETE ON jobs FOR EACH ROW "
      "EXECUTE FUNCTION test_refuse_delete()");
}

}  // namespace

TEST_CASE("a replay waits for its original's confirm and shares a 503; another request is 409") {
  scratch s;
  publisher pub(no_broker());
  submitter writes(s.pg_url, pub, 1000, 60s);
  submitting submit{writes};

  auto original = keyed_job("k1", "h1");
  pending first, replay, other;
  submit(original, first);
  submit(keyed_job("k1", "h1"), replay);
  submit(keyed_job("k1", "h2"), other);

  // Another request with the key is refused at once, while the original waits.
  REQUIRE(other.future.wait_for(2s) == std::future_status::ready);
  auto refused = other.future.get().result.refused;
  REQUIRE(refused);
  CHECK(refused->status == 409);
  CHECK(refused->code == "idempotency_key_reused");
  CHECK(first.future.wait_for(0s) == std::future_status::timeout);
  CHECK(replay.future.wait_for(0s) == std::future_status::timeout);

  REQUIRE(first.future.wait_for(20s) == std::future_status::ready);
  REQUIRE(replay.future.wait_for(5s) == std::future_status::ready);
  auto a = first.future.get(), b = replay.future.get();
  REQUIRE(a.result.refused);
  CHECK(a.result.refused->status == 503);
  // Not a 200 for a job that was withdrawn: the replay gets the same 503, after it.
  CHECK_FALSE(b.result.replayed);
  REQUIRE(b.result.refused);
  CHECK(b.result.refused->status == 503);
  CHECK(b.order > a.order);

  // Nothing but the original was ever recorded.
  auto c = pg_connect(s.pg_url);
  pqxx::nontransaction n(*c);
  CHECK(n.exec("SELECT count(*) FROM jobs")[0][0].as<int>() <= 1);
  CHECK(
      n.exec("SELECT count(*) FROM jobs WHERE id <> '" + original.id.value + "'")[0][0].as<int>() ==
      0);
  // A withdrawn job leaves no event behind (a queued submission writes
  // none; the scheduled ones below do).
  CHECK(n.exec("SELECT count(*) FROM job_events e WHERE NOT EXISTS "
               "(SELECT 1 FROM jobs j WHERE j.id = e.job_id)")[0][0]
            .as<int>() == 0);
}

TEST_CASE("a submission not committed by its deadline gets 503, and is withdrawn once it lands") {
  scratch s;
  publisher pub(no_broker());
  submitter writes(s.pg_url, pub, 1000, 60s, {}, idempotency_limits::default_ttl, nullptr, nullptr,
                   /*commit_timeout=*/1000ms);
  submitting submit{writes};
  auto refused_in_time = [](pending& p) {
    CHECK(refused_503(p, 10s).detail.find("within 1000 ms") != std::string::npos);
  };
  // Another transaction holds the first job's id, uncommitted: the group
  // commit's INSERT waits for it, as it would for a frozen server, and the
  // watchdog answers while the writer still waits.
  auto queued = sample_job("acme");
  auto holder = pg_connect(s.pg_url);
  pqxx::work lock(*holder);
  std::vector<new_job> same{queued};
  insert_jobs(lock, same);

  auto scheduled = sample_job("acme");
  scheduled.state = job_state::scheduled;
  scheduled.run_at = "2999-01-01T00:00:00Z";
  pending a, b, c;
  submit(queued, a);
  submit(scheduled, b);
  refused_in_time(a);
  refused_in_time(b);
  // Answered while its INSERT still waits (not dropped from the queue).
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
              "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO jobs%'") == 1);
  // Arrives while the commit still waits: queued behind it, never written.
  auto behind = sample_job("acme");
  submit(behind, c);
  refused_in_time(c);

  lock.abort();  // the commit lands now
  // The writer withdraws before it writes anything newer: once this one is
  // in, the late ones are gone.
  auto next = sample_job("acme");
  pending d;
  submit(next, d);
  auto ids = [&](const std::string& where) {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE " + where);
  };
  REQUIRE(wait_until([&] { return ids("id = '" + next.id.value + "'") == 1; }, 20s));
  CHECK(ids("id IN ('" + queued.id.value + "', '" + scheduled.id.value + "', '" + behind.id.value +
            "')") == 0);
  CHECK(count(s.pg_url,
              "SELECT count(*) FROM job_events e WHERE NOT EXISTS "
              "(SELECT 1 FROM jobs j WHERE j.id = e.job_id)") == 0);
  // Its confirm never comes (no broker): answered before `d` goes.
  CHECK(d.future.wait_for(20s) == std::future_status::ready);
}

TEST_CASE("a group commit whose reply was lost is withdrawn: its 503 is not a job after all") {
  scratch s;
  publisher pub(no_broker());
  // The first two commits land, then their connections "break": outside a
  // transaction block (no idempotency key) the try on a new connection finds
  // the ids taken; a keyed job's COMMIT is in doubt. Both requests get 503.
  submitter writes(s.pg_url, pub, 1000, 60s, "api_commit_reply_lost:2");
  submitting submit{writes};
  auto unkeyed = sample_job("acme");
  auto keyed = keyed_job("k-lost", "h");
  pending a, b;
  submit(unkeyed, a);
  refused_503(a, 20s);
  submit(keyed, b);
  refused_503(b, 20s);
  // The withdrawals run before the next write: once this one is in, the
  // two are gone, though they had committed.
  auto next = sample_job("acme");
  pending c;
  submit(next, c);
  auto rows = [&](const std::string& table, const std::string& column, const std::string& id) {
    return count(s.pg_url,
                 "SELECT count(*) FROM " + table + " WHERE " + column + " = '" + id + "'");
  };
  REQUIRE(wait_until([&] { return rows("jobs", "id", next.id.value) == 1; }, 20s));
  for (const auto* lost : {&unkeyed, &keyed}) {
    CHECK(rows("jobs", "id", lost->id.value) == 0);
    CHECK(rows("job_events", "job_id", lost->id.value) == 0);
  }
  CHECK(c.future.wait_for(20s) == std::future_status::ready);
}

TEST_CASE("a withdrawal that fails is tried again until it lands") {
  scratch s;
  publisher pub(no_broker());
  submitter writes(s.pg_url, pub, 1000, 60s, "api_commit_reply_lost:1");
  // The withdrawal's DELETE fails until the trigger goes.
  refuse_deletes(s.pg_url, true);
  auto lost = sample_job("acme");
  pending a;
  submitting submit{writes};
  submit(lost, a);
  REQUIRE(a.future.wait_for(20s) == std::future_status::ready);
  REQUIRE(a.future.get().result.refused);
  auto here = [&] {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + lost.id.value + "'");
  };
  std::this_thread::sleep_for(500ms);  // a failed try or two, not a synchronisation
  CHECK(here() == 1);
  refuse_deletes(s.pg_url, false);
  CHECK(wait_until([&] { return here() == 0; }, 15s));
}

TEST_CASE(
    "a retry with the key of a job answered 503 and not yet withdrawn gets 503, not the job") {
  scratch s;
  publisher pub(no_broker());
  // The keyed commit lands but its reply is lost: 503, and the withdrawal
  // fails until the trigger goes. Scheduled jobs: each is answered at its
  // commit, the broker not needed.
  submitter writes(s.pg_url, pub, 1000, 60s, "api_commit_reply_lost:1");
  refuse_deletes(s.pg_url, true);
  auto later = [] {
    auto j = keyed_job("k-withdrawn", "h");
    j.state = job_state::scheduled;
    j.run_at = "2999-01-01T00:00:00Z";
    return j;
  };
  submitting submit{writes};
  auto original = later();
  pending a;
  submit(original, a);
  refused_503(a, 20s);
  // The client retries at once, as told: the row is still there, but it is
  // no job of the client's.
  pending b;
  submit(later(), b);
  auto p = refused_503(b, 20s);
  CHECK(p.detail.find("being withdrawn") != std::string::npos);
  auto here = [&] {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + original.id.value + "'");
  };
  CHECK(here() == 1);
  refuse_deletes(s.pg_url, false);
  // The next write withdraws it first; the retry after that makes the job.
  auto third = later();
  pending c;
  submit(third, c);
  REQUIRE(c.future.wait_for(20s) == std::future_status::ready);
  auto r = c.future.get().result;
  CHECK_FALSE(r.refused);
  CHECK_FALSE(r.replayed);
  CHECK(here() == 0);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + third.id.value + "'") == 1);
}

TEST_CASE("a group commit held by the gap begins once a quarter of batch_max is queued") {
  // JOBS_SUBMIT_COMMIT_GAP_MS with the machine read as busy (the fault
  // api_machine_busy): batch_max 8, so two submissions queued end the wait.
  scratch s;
  pending a, b, c;  // outlive the submitter, which answers them
  publisher pub(no_broker());
  submitter writes(s.pg_url, pub, 8, 60s, "api_machine_busy", idempotency_limits::default_ttl,
                   nullptr, nullptr, /*commit_timeout=*/30s, /*commit_gap=*/5s);
  submitting submit{writes};
  auto recorded = [&](const new_job& j) {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + j.id.value + "'") == 1;
  };
  // The broker never answers, so each job is withdrawn again 3 s after its
  // commit: rows are looked for in between.
  auto first = keyed_job("", "");
  submit(first, a);
  // No commit before it to space from: it goes at once.
  CHECK(wait_until([&] { return recorded(first); }, 2500ms));
  auto held = keyed_job("", "");
  submit(held, b);
  std::this_thread::sleep_for(1s);
  CHECK_FALSE(recorded(held));  // within 5 s of the first commit
  auto second = keyed_job("", "");
  submit(second, c);
  CHECK(wait_until([&] { return recorded(held) && recorded(second); }, 2500ms));
  for (auto* p : {&a, &b, &c}) refused_503(*p, 20s);  // the broker's deadline
}

TEST_CASE("a group commit is not held past its oldest submission's deadline") {
  scratch s;
  pending a, b;
  publisher pub(no_broker());
  // A gap longer than the commit deadline: waiting would be a 503.
  submitter writes(s.pg_url, pub, 1000, 60s, "api_machine_busy", idempotency_limits::default_ttl,
                   nullptr, nullptr, /*commit_timeout=*/2000ms, /*commit_gap=*/5s);
  submitting submit{writes};
  auto recorded = [&](const new_job& j) {
    return count(s.pg_url, "SELECT count(*) FROM jobs WHERE id = '" + j.id.value + "'") == 1;
  };
  auto first = keyed_job("", ""), next = keyed_job("", "");
  submit(first, a);
  CHECK(wait_until([&] { return recorded(first); }, 1500ms));
  submit(next, b);
  CHECK(wait_until([&] { return recorded(next); }, 1500ms));
  // Its answer is the broker's 503, not the commit deadline's.
  refused_503(a, 20s);
  auto p = refused_503(b, 20s);
  CHECK(p.detail.find("did not record the job") == std::string::npos);
}
