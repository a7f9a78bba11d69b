// The circuit breaker's statements (workers/webhooks/endpoints.hpp) against
// a live PostgreSQL: the trial is taken once and only when half-open, a
// success closes the breaker and makes due exactly the jobs waiting for the
// trial, a failure at the threshold pauses it again (its waiting jobs
// waiting for the pause's end), a trial given back
// makes one waiting job due.
// ctest-labels: webhooks
#include "common/db.hpp"
#include "support/live.hpp"
#include "workers/webhooks/endpoints.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace jobs::webhooks;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

void add_endpoint(pqxx::connection& c, const std::string& tenant, const std::string& name,
                  int failures) {
  pqxx::work w(c);
  w.exec_params(
      "INSERT INTO webhook_endpoints (tenant_id, name, secrets, consecutive_failures) "
      "VALUES ($1, $2, ARRAY[$3], $4)",
      tenant, name, std::string(secret), failures);
  w.commit();
}

// A webhooks.deliver job, scheduled at `run_at` (SQL), naming `endpoint`
// (none: the payload names no endpoint, so "default").
std::string waiting_job(pqxx::connection& c, const std::string& tenant, const std::string& endpoint,
                        const std::string& run_at) {
  std::string payload = R"({"url":"https://example.com/hook")" +
                        (endpoint.empty() ? "" : R"(,"endpoint":")" + endpoint + "\"") + "}";
  pqxx::work w(c);
  auto r = w.exec_params(
      "INSERT INTO jobs (id, tenant_id, queue, type, payload, state, run_at) "
      "VALUES (gen_random_uuid(), $1, 'webhooks', 'deliver', $2::jsonb, 'scheduled', " +
          run_at + ") RETURNING id::text",
      tenant, payload);
  w.commit();
  return r[0][0].c_str();
}

void run(pqxx::connection& c, const std::string& sql) {
  pqxx::work w(c);
  w.exec(sql);
  w.commit();
}

bool due(pqxx::connection& c, const std::string& id) {
  pqxx::nontransaction n(c);
  return n.exec_params("SELECT run_at <= now() FROM jobs WHERE id = $1::uuid", id)[0][0].as<bool>();
}

std::string column(pqxx::connection& c, const std::string& expr, const std::string& name) {
  pqxx::nontransaction n(c);
  auto f = n.exec_params(
      "SELECT (" + expr + ")::text FROM webhook_endpoints WHERE tenant_id = 'acme' AND name = $1",
      name)[0][0];
  return f.is_null() ? "null" : f.c_str();
}

std::string ms_sql(const breaker_time& t) {
  return "'epoch'::timestamptz + " +
         std::to_string(
             std::chrono::duration_cast<std::chrono::milliseconds>(t.at.time_since_epoch())
                 .count()) +
         " * interval '1 millisecond'";
}

// Closes the breaker as a success's commit hook does, in a transaction of
// its own.
void close_breaker(endpoint_store& store, pqxx::connection& c) {
  pqxx::work w(c);
  store.reset(w, "acme", "ep", "webhooks");
  w.commit();
}

// A trial taken, a job waiting for it, then a failure: paused again (from
// 3 failures to 4). The trial's lease and the waiting job's id.
std::pair<breaker_time, std::string> failed_trial(endpoint_store& store, pqxx::connection& c) {
  auto t = store.take_trial("acme", "ep", 30s);
  REQUIRE(t);
  auto waiting = waiting_job(c, "acme", "ep", ms_sql(*t));
  store.record_failure("acme", "ep", "webhooks");
  REQUIRE(wait_until([&] { return column(c, "consecutive_failures", "ep") == "4"; }, 10s));
  return {*t, waiting};
}

}  // namespace

TEST_CASE("the breaker's trial is taken once, and only once the pause is over") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_endpoint(*c, "acme", "ep", 0);
  endpoint_store store(s.pg_url, 2, 60s);
  auto ep = store.find("acme", "ep");
  REQUIRE(ep);
  CHECK(gate(*ep, 2, std::chrono::steady_clock::now()) == breaker_gate::send);
  CHECK_FALSE(store.take_trial("acme", "ep", 10s));  // closed: below the threshold

  store.record_failure("acme", "ep", "webhooks");
  store.record_failure("acme", "ep", "webhooks");
  REQUIRE(wait_until([&] { return column(*c, "paused_until > now()", "ep") == "true"; }, 10s));
  ep = store.find("acme", "ep");
  REQUIRE(ep);
  CHECK(ep->consecutive_failures == 2);
  REQUIRE(ep->paused_until);
  CHECK(gate(*ep, 2, std::chrono::steady_clock::now()) == breaker_gate::wait_pause);
  auto left = ep->paused_until->at - std::chrono::system_clock::now();
  CHECK(left > 50s);  // within a minute, whatever the clocks say
  CHECK(left < 70s);
  CHECK_FALSE(store.take_trial("acme", "ep", 10s));  // still paused

  // The pause over: half-open. Read fresh (a paused endpoint is not cached).
  run(*c, "UPDATE webhook_endpoints SET paused_until = now() - interval '1 second'");
  ep = store.find("acme", "ep");
  REQUIRE(ep);
  CHECK_FALSE(ep->paused_until);
  CHECK(gate(*ep, 2, std::chrono::steady_clock::now()) == breaker_gate::trial);
  auto t = store.take_trial("acme", "ep", 10s);
  REQUIRE(t);
  CHECK(t->at.time_since_epoch() % 1ms == 0ns);  // whole milliseconds
  CHECK(t->local > std::chrono::steady_clock::now() + 8s);
  CHECK(column(*c, "trial_until = " + ms_sql(*t), "ep") == "true");
  CHECK_FALSE(store.take_trial("acme", "ep", 10s));  // one at a time
  ep = store.find("acme", "ep");
  REQUIRE(ep);
  REQUIRE(ep->trial_until);
  CHECK(ep->trial_until->at == t->at);
  CHECK(gate(*ep, 2, std::chrono::steady_clock::now()) == breaker_gate::wait_trial);
  // A trial whose worker died ends with its lease: the next one is taken.
  run(*c, "UPDATE webhook_endpoints SET trial_until = now() - interval '1 ms'");
  CHECK(store.take_trial("acme", "ep", 10s));
}

TEST_CASE("a success closes the breaker and makes due the jobs waiting for its trial") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_endpoint(*c, "acme", "ep", 5);
  add_endpoint(*c, "acme", "default", 5);
  endpoint_store store(s.pg_url, 2, 60s);
  auto t = store.take_trial("acme", "ep", 30s);
  REQUIRE(t);
  auto at = ms_sql(*t);
  auto w1 = waiting_job(*c, "acme", "ep", at);
  auto w2 = waiting_job(*c, "acme", "ep", at);
  auto other_endpoint = waiting_job(*c, "acme", "", at);  // "default"
  auto other_tenant = waiting_job(*c, "zeta", "ep", at);
  auto user_scheduled = waiting_job(*c, "acme", "ep", at + " + interval '1 millisecond'");
  close_breaker(store, *c);
  CHECK(column(*c, "consecutive_failures", "ep") == "0");
  CHECK(column(*c, "paused_until", "ep") == "null");
  CHECK(column(*c, "trial_until", "ep") == "null");
  CHECK(due(*c, w1));
  CHECK(due(*c, w2));
  CHECK_FALSE(due(*c, other_endpoint));
  CHECK_FALSE(due(*c, other_tenant));
  CHECK_FALSE(due(*c, user_scheduled));
  CHECK(column(*c, "consecutive_failures", "default") == "5");

  // A job that read the trial as out, its wait committed after the end:
  // made due by the pass a second later.
  auto late = waiting_job(*c, "acme", "ep", at);
  CHECK_FALSE(due(*c, late));
  CHECK(wait_until([&] { return due(*c, late); }, 4s));
  CHECK_FALSE(due(*c, user_scheduled));

  // A success while closed changes nothing, and wakes nothing.
  close_breaker(store, *c);
  CHECK_FALSE(due(*c, user_scheduled));
}

TEST_CASE("a trial failing pauses again; a trial given back makes one waiting job due") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_endpoint(*c, "acme", "ep", 3);
  endpoint_store store(s.pg_url, 2, 60s);
  auto [trial, waiting] = failed_trial(store, *c);
  CHECK(column(*c, "paused_until > now() + interval '50 seconds'", "ep") == "true");
  CHECK(column(*c, "trial_until", "ep") == "null");
  // It waits for the pause's end now, no longer for the trial's lease; so
  // does one whose wait was committed after the failure, a second later.
  auto waits_for_pause = [&](const std::string& id) {
    pqxx::nontransaction n(*c);
    return n
        .exec_params(
            "SELECT j.run_at = e.paused_until FROM jobs j, webhook_endpoints e "
            "WHERE j.id = $1::uuid AND e.name = 'ep'",
            id)[0][0]
        .as<bool>();
  };
  CHECK(waits_for_pause(waiting));
  auto late = waiting_job(*c, "acme", "ep", ms_sql(trial));
  CHECK_FALSE(waits_for_pause(late));
  CHECK(wait_until([&] { return waits_for_pause(late); }, 4s));

  run(*c, "UPDATE webhook_endpoints SET paused_until = NULL");
  auto t = store.take_trial("acme", "ep", 30s);
  REQUIRE(t);
  auto a = waiting_job(*c, "acme", "ep", ms_sql(*t));
  auto b = waiting_job(*c, "acme", "ep", ms_sql(*t));
  // A stale lease gives nothing back.
  store.release_trial("acme", "ep", "webhooks",
                      breaker_time{t->at - 1ms, std::chrono::steady_clock::now()});
  store.release_trial("acme", "ep", "webhooks", *t);
  REQUIRE(wait_until([&] { return column(*c, "trial_until", "ep") == "null"; }, 10s));
  CHECK(due(*c, a) + due(*c, b) == 1);
  CHECK(column(*c, "consecutive_failures", "ep") == "4");  // no verdict
  CHECK(store.take_trial("acme", "ep", 30s));              // the next trial
}

TEST_CASE("a trial's success after a failure paused again wakes the jobs moved to the pause") {
  // A trial is out when another delivery's failure pauses the endpoint
  // again (one sent before the pause, with a long timeout): the trial's
  // waiters now wait for the pause. The trial then succeeds: the breaker
  // closes, and they must not sit out the cancelled pause.
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_endpoint(*c, "acme", "ep", 3);
  endpoint_store store(s.pg_url, 2, 60s);
  auto [trial, waiting] = failed_trial(store, *c);
  // Paused until a whole millisecond, as the jobs waiting for it are.
  CHECK(column(*c, "paused_until = date_trunc('milliseconds', paused_until)", "ep") == "true");
  CHECK_FALSE(due(*c, waiting));
  // A job that read the pause: it snoozes until the same millisecond.
  auto ep = store.find("acme", "ep");
  REQUIRE(ep);
  REQUIRE(ep->paused_until);
  auto read_pause = waiting_job(*c, "acme", "ep", ms_sql(*ep->paused_until));
  close_breaker(store, *c);
  CHECK(column(*c, "paused_until", "ep") == "null");
  CHECK(due(*c, waiting));
  CHECK(due(*c, read_pause));
}

TEST_CASE("a success's hook does not wait for an endpoint row another transaction holds") {
  // Two rounds closing two endpoints in opposite orders would deadlock:
  // the hook skips a held row, and the writer closes it once it is free.
  scratch s;
  auto c = pg_connect(s.pg_url);
  add_endpoint(*c, "acme", "ep", 3);
  endpoint_store store(s.pg_url, 2, 60s);
  auto other = pg_connect(s.pg_url);
  pqxx::work holder(*other);
  holder.exec("SELECT 1 FROM webhook_endpoints WHERE name = 'ep' FOR UPDATE");
  {
    pqxx::work w(*c);
    w.exec("SET LOCAL lock_timeout = '5s'");  // a wait would fail the test, not hang it
    store.reset(w, "acme", "ep", "webhooks");
    w.commit();
  }
  CHECK(column(*c, "consecutive_failures", "ep") == "3");  // not yet: the row is held
  holder.commit();
  CHECK(wait_until([&] { return column(*c, "consecutive_failures", "ep") == "0"; }, 10s));

  // A PUT of new secrets while the row is held changes no breaker state:
  // the deferred reset still applies.
  run(*c, "UPDATE webhook_endpoints SET consecutive_failures = 3");
  pqxx::work put(*other);
  put.exec("UPDATE webhook_endpoints SET secrets = secrets, updated_at = clock_timestamp()");
  close_breaker(store, *c);
  put.commit();
  CHECK(wait_until([&] { return column(*c, "consecutive_failures", "ep") == "0"; }, 10s));

  // Unless the holder changed it (a failure elsewhere paused it again):
  // that is newer than the success, and stays.
  run(*c, "UPDATE webhook_endpoints SET consecutive_failures = 3");
  pqxx::work failing(*other);
  failing.exec(
      "UPDATE webhook_endpoints SET consecutive_failures = 4, "
      "paused_until = now() + interval '1 minute', updated_at = clock_timestamp()");
  close_breaker(store, *c);
  failing.commit();
  // The writer's reset, if it were to come, comes at once after the commit.
  std::this_thread::sleep_for(1s);
  CHECK(column(*c, "consecutive_failures", "ep") == "4");
  CHECK(column(*c, "paused_until > now()", "ep") == "true");
}
