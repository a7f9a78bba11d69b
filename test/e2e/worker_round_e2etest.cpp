// ctest-labels: fault
// A worker's round failing at an exact moment, for real: PostgreSQL refusing
// the round's outcomes (a trigger raising an error), or a COMMIT that lands
// while its reply is lost (a relay cutting the worker's connection). Each
// case breaks one guard of workers/detail/worker_cycle.cpp and
// worker_upkeep.cpp; then the jobs are checked in PostgreSQL.
#include "common/db.hpp"
#include "support/cutting_relay.hpp"
#include "support/files.hpp"
#include "support/live.hpp"
#include "support/prom_text.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

void exec(const std::string& pg_url, const std::string& sql) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  n.exec(sql);
}

// PostgreSQL refuses every success a worker records (its attempt row), with
// an error that is not in the data (SQLSTATE P0001): the round fails as a
// whole and is sent again after the loop's backoff. Other outcomes land.
constexpr const char* refusal = "refused by the test";
void refuse_successes(const std::string& pg_url) {
  exec(pg_url, fmt::format(R"(
    CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{}'; END $$;
    CREATE TRIGGER test_refuse BEFORE INSERT ON job_attempts FOR EACH ROW
      WHEN (NEW.outcome = 'succeeded') EXECUTE FUNCTION test_refuse())",
                           refusal));
}
void take_successes(const std::string& pg_url) {
  exec(pg_url, "DROP TRIGGER test_refuse ON job_attempts");
}

// The worker's log so far.
std::string worker_log(const platform& p) {
  return file_text(p.log_dir + "/worker-processing-0.log");
}

long attempts_of(const std::string& pg_url, const std::string& id) {
  return count(pg_url, "SELECT attempts FROM jobs WHERE id = '" + id + "'");
}

long attempt_rows(const std::string& pg_url, const std::string& id, const std::string& where) {
  return count(pg_url,
               "SELECT count(*) FROM job_attempts WHERE job_id = '" + id + "' AND " + where);
}

const std::string cut_marker = "jobs-test: cut the connection here";

// A worker whose connections to the scratch database go through `relay`,
// with its metrics on `metrics_port`.
void add_relayed_worker(platform& p, const scratch& s, const cutting_relay& relay, int metrics_port,
                        std::map<std::string, std::string> env = {}) {
  auto slash = s.pg_url.rfind('/');
  auto colon = s.pg_url.rfind(':', slash);
  env["JOBS_PG_URL"] = s.pg_url.substr(0, colon + 1) + std::to_string(relay.port()) +
                       s.pg_url.substr(slash) + "?sslmode=disable";
  env["JOBS_WORKER_METRICS_PORT"] = std::to_string(metrics_port);
  env["JOBS_METRICS_ADDR"] = "127.0.0.1";
  p.add_worker("processing", env);
}

// Once the worker has sent the outcome in doubt again and seen it not land:
// an attempt unconfirmed, not one lost (its lease run out), in the log and
// in the metrics. `text`: the log then.
void check_unconfirmed_not_lost(const platform& p, int metrics_port, std::string& text) {
  REQUIRE(wait_until(
      [&] {
        text = worker_log(p);
        return text.find("attempt's outcome unconfirmed") != std::string::npos ||
               text.find("attempt not recorded") != std::string::npos;
      },
      30s));
  CHECK(text.find("attempt's outcome unconfirmed") != std::string::npos);
  CHECK(text.find("attempt not recorded") == std::string::npos);
  http_client m(metrics_port);
  CHECK(prom_sum(parse_prom_text(m.get("/metrics", "").body), "jobs_lost_attempts_total",
                 {{"queue", "processing"}}) == 0);
}

// A platform whose one processing worker runs with `env`, and a key of
// tenant acme: what the refused-round cases start from.
struct one_worker {
  scratch s;
  platform p{s, {}, {}, true};
  std::string key = create_key(s.pg_url, "acme");
  http_client h{p.port};
  explicit one_worker(const std::map<std::string, std::string>& env) {
    p.add_worker("processing", env);
  }
};

}  // namespace

TEST_CASE("worker round 1: an outcome whose COMMIT landed but whose reply was lost, in doubt") {
  // The round of a job with a commit hook is a transaction. At its COMMIT a
  // deferred trigger sends a NOTICE, and the relay between the worker and
  // PostgreSQL closes the worker's connection there: the COMMIT lands, the
  // worker sees its connection lost (pqxx::in_doubt_error). The next round
  // sends the outcome again, and it does not land, being there already: the
  // job has ended once, and the attempt is unconfirmed, not lost.
  scratch s;
  cutting_relay relay(std::stoi(require_env("JOBS_TEST_PG_PORT")), cut_marker);
  platform p(s, {}, {}, true);
  // Once: the first job's success (its row in test_cut records which).
  exec(s.pg_url, fmt::format(R"(
    CREATE TABLE test_cut (job_id uuid NOT NULL);
    CREATE FUNCTION test_cut() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM test_cut) THEN
        INSERT INTO test_cut VALUES (NEW.id);
        RAISE NOTICE '{}';
      END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER test_cut AFTER UPDATE OF state ON jobs
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.state = 'succeeded')
      EXECUTE FUNCTION test_cut())",
                             cut_marker));
  int metrics_port = free_port();
  add_relayed_worker(p, s, relay, metrics_port);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_job(h, key, R"({"queue":"processing","type":"test.count","payload":{}})");
  CHECK(wait_until([&] { return state_of(s.pg_url, id) == "succeeded"; }, 30s));
  CHECK(relay.cuts() == 1);
  CHECK(count(s.pg_url, "SELECT count(*) FROM test_cut WHERE job_id = '" + id + "'") == 1);
  std::string text;
  check_unconfirmed_not_lost(p, metrics_port, text);
  CHECK(text.find("Connection lost while committing") != std::string::npos);  // in_doubt_error
  // One attempt, recorded once, its handler's success counted once.
  CHECK(attempts_of(s.pg_url, id) == 1);
  CHECK(attempt_rows(s.pg_url, id, "true") == 1);
  CHECK(handled(s.pg_url)[id] == 1);
  // And the worker goes on, on a connection of its own again.
  auto next = submit_job(h, key, R"({"queue":"processing","type":"test.count","payload":{}})");
  CHECK(wait_until([&] { return state_of(s.pg_url, next) == "succeeded"; }, 30s));
  CHECK(state_of(s.pg_url, id) == "succeeded");
  CHECK(attempt_rows(s.pg_url, id, "true") == 1);
  CHECK(relay.cuts() == 1);
}

TEST_CASE("worker round 1b: a round whose connection is lost twice, on its retry too, in doubt") {
  // A job without commit hooks: its round is one statement in an implicit
  // transaction. The relay cuts the worker's connection at the end of the
  // statement that completes the job (which still commits), and again on
  // the statement sent once more at once on a new connection: the round
  // fails with a lost connection (pqxx::broken_connection), not an
  // in_doubt_error, and its outcome is in doubt all the same.
  scratch s;
  cutting_relay relay(std::stoi(require_env("JOBS_TEST_PG_PORT")), cut_marker);
  platform p(s, {}, {}, true);
  // Only the worker's statements (its application name): the first that
  // completes a job, then the next UPDATE of jobs, whatever it changes.
  exec(s.pg_url, fmt::format(R"(
    CREATE TABLE test_cut (n integer NOT NULL);
    CREATE FUNCTION test_cut() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE cut integer := (SELECT count(*) FROM test_cut);
    BEGIN
      IF current_setting('application_name') = 'jobs-test-cut'
         AND (cut = 1 OR (cut = 0 AND EXISTS (SELECT 1 FROM changed WHERE state = 'succeeded')))
      THEN
        INSERT INTO test_cut VALUES (cut + 1);
        RAISE NOTICE '{}';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_cut AFTER UPDATE ON jobs REFERENCING NEW TABLE AS changed
      FOR EACH STATEMENT EXECUTE FUNCTION test_cut())",
                             cut_marker));
  int metrics_port = free_port();
  add_relayed_worker(p, s, relay, metrics_port, {{"PGAPPNAME", "jobs-test-cut"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{}})");
  CHECK(wait_until([&] { return state_of(s.pg_url, id) == "succeeded"; }, 30s));
  CHECK(wait_until([&] { return relay.cuts() == 2; }, 30s));
  std::string text;
  check_unconfirmed_not_lost(p, metrics_port, text);
  CHECK(text.find("Connection lost while committing") == std::string::npos);  // broken_connection
  CHECK(attempts_of(s.pg_url, id) == 1);
  CHECK(attempt_rows(s.pg_url, id, "true") == 1);
  auto next = submit_job(h, key, R"({"queue":"processing","type":"noop","payload":{}})");
  CHECK(wait_until([&] { return state_of(s.pg_url, next) == "succeeded"; }, 30s));
  CHECK(attempt_rows(s.pg_url, id, "true") == 1);
  CHECK(relay.cuts() == 2);
}

TEST_CASE("worker round 2: rounds the database refuses do not hold back the running jobs' leases") {
  // A long job runs while another's success is refused round after round.
  // Each refused round is followed by the upkeep (leases, cancels,
  // timeouts), so the long job's lease is renewed meanwhile, and the job is
  // neither queued again nor buried by the API's rescuer as a lost worker's.
  // The lease (6 s) outlasts the loop's longest backoff (5 s) between two
  // renewals; the round gap is off, so every turn of the loop sends a round.
  one_worker f({{"JOBS_WORKER_LEASE_MS", "6000"},
                {"JOBS_WORKER_ROUND_GAP_MS", "0"},
                {"JOBS_WORKER_CONCURRENCY", "2"}});
  // max_attempts 1: a lease lost would make it dead at once.
  auto longer = submit_job(
      f.h, f.key,
      R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":8000},"max_attempts":1})");
  REQUIRE(wait_until([&] { return state_of(f.s.pg_url, longer) == "running"; }, 20s));
  refuse_successes(f.s.pg_url);
  auto refused =
      submit_job(f.h, f.key, R"({"queue":"processing","type":"test.count","payload":{}})");
  REQUIRE(wait_until([&] { return worker_log(f.p).find(refusal) != std::string::npos; }, 20s));
  auto lease = [&] {
    return count(f.s.pg_url, fmt::format("SELECT coalesce((extract(epoch FROM lease_expires_at) * "
                                         "1000)::bigint, 0) FROM jobs WHERE id = '{}'",
                                         longer));
  };
  // Renewed while the rounds are refused (without the renewal, it never
  // moves until the refusal ends).
  auto first = lease();
  CHECK(wait_until([&] { return lease() > first; }, 20s));
  CHECK(state_of(f.s.pg_url, refused) == "running");
  take_successes(f.s.pg_url);
  CHECK(wait_until([&] { return state_of(f.s.pg_url, refused) == "succeeded"; }, 30s));
  CHECK(wait_until([&] { return state_of(f.s.pg_url, longer) == "succeeded"; }, 30s));
  CHECK(attempts_of(f.s.pg_url, longer) == 1);
  CHECK(attempt_rows(f.s.pg_url, longer, "true") == 1);
  CHECK(handled(f.s.pg_url)[longer] == 1);
  CHECK(worker_log(f.p).find("lease lost") == std::string::npos);
}

TEST_CASE(
    "worker round 2b: a lease shorter than the backoff holds too, and nothing is handed back") {
  // The same with a 2 s lease: the loop backs off up to 5 s between rounds
  // the database refuses, which once let such a lease run out; and a
  // lease's worth of refused rounds counted as a database gone away, so the
  // worker handed its messages back to the broker again and again (each
  // time one more delivery towards the queue's limit). The database
  // answers and keeps the leases: neither happens.
  one_worker f({{"JOBS_WORKER_LEASE_MS", "2000"},
                {"JOBS_WORKER_ROUND_GAP_MS", "0"},
                {"JOBS_WORKER_CONCURRENCY", "2"}});
  auto longer = submit_job(
      f.h, f.key,
      R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":9000},"max_attempts":1})");
  REQUIRE(wait_until([&] { return state_of(f.s.pg_url, longer) == "running"; }, 20s));
  refuse_successes(f.s.pg_url);
  auto refused =
      submit_job(f.h, f.key, R"({"queue":"processing","type":"test.count","payload":{}})");
  REQUIRE(wait_until([&] { return worker_log(f.p).find(refusal) != std::string::npos; }, 20s));
  std::this_thread::sleep_for(8s);  // past the 5 s backoff, four leases long
  take_successes(f.s.pg_url);
  CHECK(wait_until([&] { return state_of(f.s.pg_url, refused) == "succeeded"; }, 30s));
  CHECK(wait_until([&] { return state_of(f.s.pg_url, longer) == "succeeded"; }, 30s));
  CHECK(attempts_of(f.s.pg_url, longer) == 1);
  CHECK(handled(f.s.pg_url)[longer] == 1);
  auto text = worker_log(f.p);
  CHECK(text.find("lease lost") == std::string::npos);
  CHECK(text.find("handing the broker's messages back") == std::string::npos);
}

TEST_CASE("worker round 2c: claims refused with no job in hand are no database gone away") {
  // The database answers but refuses the claims (a trigger on the move into
  // `running`): nothing is in hand, and the worker holds its messages rather
  // than hand them back to the broker a lease later, again and again.
  one_worker f({{"JOBS_WORKER_LEASE_MS", "2000"}, {"JOBS_WORKER_ROUND_GAP_MS", "0"}});
  exec(f.s.pg_url, fmt::format(R"(
    CREATE FUNCTION test_refuse_claims() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{}'; END $$;
    CREATE TRIGGER test_refuse_claims BEFORE UPDATE OF state ON jobs FOR EACH ROW
      WHEN (NEW.state = 'running') EXECUTE FUNCTION test_refuse_claims())",
                               refusal));
  auto id = submit_job(f.h, f.key, R"({"queue":"processing","type":"test.count","payload":{}})");
  REQUIRE(wait_until([&] { return worker_log(f.p).find(refusal) != std::string::npos; }, 30s));
  std::this_thread::sleep_for(6s);  // three leases
  CHECK(worker_log(f.p).find("handing the broker's messages back") == std::string::npos);
  exec(f.s.pg_url, "DROP TRIGGER test_refuse_claims ON jobs");
  CHECK(wait_until([&] { return state_of(f.s.pg_url, id) == "succeeded"; }, 30s));
  CHECK(attempts_of(f.s.pg_url, id) == 1);
}

TEST_CASE("worker round 3: a success held by a refused round is not overwritten by its timeout") {
  // The handler returns well within the job's timeout, but the rounds that
  // would record its success are refused until past the timeout (and its
  // grace, 0 here). The timeout's outcome would land (only successes are
  // refused): the job would end dead, timed out, its success thrown away.
  one_worker f({{"JOBS_WORKER_CANCEL_GRACE_MS", "0"}, {"JOBS_WORKER_ROUND_GAP_MS", "0"}});
  refuse_successes(f.s.pg_url);
  auto id = submit_job(f.h, f.key,
                       R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":100},)"
                       R"("timeout_ms":1500,"max_attempts":1})");
  // The timeout passed while the success waited, and the loop's upkeep
  // after it ran (a refused round is logged after it).
  REQUIRE(wait_until([&] { return worker_log(f.p).find(refusal) != std::string::npos; }, 30s));
  std::this_thread::sleep_for(2500ms);  // past the timeout
  auto seen = worker_log(f.p).size();
  REQUIRE(
      wait_until([&] { return worker_log(f.p).find(refusal, seen) != std::string::npos; }, 30s));
  CHECK(state_of(f.s.pg_url, id) == "running");
  // Nor is it reported as a timeout.
  CHECK(worker_log(f.p).find("job timed out") == std::string::npos);
  take_successes(f.s.pg_url);
  CHECK(wait_until([&] { return state_of(f.s.pg_url, id) != "running"; }, 30s));
  CHECK(state_of(f.s.pg_url, id) == "succeeded");
  CHECK(attempts_of(f.s.pg_url, id) == 1);
  CHECK(attempt_rows(f.s.pg_url, id, "true") == 1);
  CHECK(attempt_rows(f.s.pg_url, id, "error LIKE 'timed out%'") == 0);
  CHECK(handled(f.s.pg_url)[id] == 1);
}

TEST_CASE(
    "worker round 3b: a failure held by a refused round keeps its own error past the timeout") {
  // As 3, for an outcome that is not a success: a job whose handler fails
  // (max_attempts 1: dead), held while the rounds are refused (a success
  // that finished before it is what the database refuses, in every round
  // from then on) until past its timeout. It ends dead with its handler's
  // error, not a timeout's.
  one_worker f({{"JOBS_WORKER_CANCEL_GRACE_MS", "0"},
                {"JOBS_WORKER_ROUND_GAP_MS", "0"},
                {"JOBS_WORKER_CONCURRENCY", "2"}});
  auto held = submit_job(
      f.h, f.key, R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":1500}})");
  auto failed = submit_job(
      f.h, f.key,
      R"({"queue":"processing","type":"test.fail","payload":{"fail_times":1,"sleep_ms":2000},)"
      R"("timeout_ms":3000,"max_attempts":1})");
  REQUIRE(wait_until(
      [&] {
        return state_of(f.s.pg_url, held) == "running" && state_of(f.s.pg_url, failed) == "running";
      },
      30s));
  refuse_successes(f.s.pg_url);  // before either returns
  REQUIRE(wait_until([&] { return worker_log(f.p).find(refusal) != std::string::npos; }, 30s));
  std::this_thread::sleep_for(3s);  // past the timeout
  auto seen = worker_log(f.p).size();
  REQUIRE(
      wait_until([&] { return worker_log(f.p).find(refusal, seen) != std::string::npos; }, 30s));
  CHECK(state_of(f.s.pg_url, failed) == "running");
  take_successes(f.s.pg_url);
  CHECK(wait_until([&] { return state_of(f.s.pg_url, failed) == "dead"; }, 30s));
  CHECK(wait_until([&] { return state_of(f.s.pg_url, held) == "succeeded"; }, 30s));
  CHECK(attempt_rows(f.s.pg_url, failed, "error = 'planned failure on attempt 1'") == 1);
  CHECK(attempt_rows(f.s.pg_url, failed, "error LIKE 'timed out%'") == 0);
  CHECK(worker_log(f.p).find("job timed out") == std::string::npos);
}
