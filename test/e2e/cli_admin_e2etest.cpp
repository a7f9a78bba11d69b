// ctest-labels: dashboard
// jobsctl's admin commands against a running platform: keys create, list
// and revoke (a revoked key fails at once; a viewer key cannot write; a
// key that is not admin cannot manage keys), and queues (depth of a queue
// without workers, consumers of one with a worker).
#include "support/jobsctl.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>

using namespace jobs::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string line_with(const std::string& text, const std::string& part) {
  auto at = text.find(part);
  if (at == std::string::npos) return {};
  auto start = text.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, text.find('\n', at) - start);
}

}  // namespace

TEST_CASE("jobsctl keys create, list and revoke") {
  scratch s;
  platform p(s, {});
  jobsctl admin{"http://127.0.0.1:" + std::to_string(p.port), create_key(s.pg_url, "cli"),
                p.log_dir};

  auto made = admin(
      {"keys", "create", "--name", "reader", "--role", "viewer", "--expires-in", "1d", "--json"});
  INFO(made.err);
  REQUIRE(made.status == 0);
  auto k = json::parse(made.out).as_object();
  auto viewer_key = std::string(k.at("key").as_string());
  auto viewer_id = std::string(k.at("id").as_string());
  CHECK(viewer_key.starts_with("jk_"));
  CHECK(!k.at("expires_at").is_null());

  auto human = admin({"keys", "create", "--name", "ci"});
  CHECK(human.status == 0);
  CHECK(has(human.out, "role:    submitter"));
  CHECK(has(human.out, "key:     jk_"));
  CHECK(has(human.err, "shown only this once"));
  auto quiet = admin({"keys", "create", "--name", "q", "-q"});
  CHECK(quiet.out.starts_with("jk_"));
  CHECK(quiet.out.size() == 52);  // jk_ + 48 hex + newline

  auto listed = admin({"keys", "list"});
  CHECK(listed.status == 0);
  CHECK(listed.out.starts_with("ID"));
  auto reader = line_with(listed.out, "reader");
  CHECK(has(reader, "viewer"));
  CHECK(has(reader, viewer_key.substr(0, 10)));
  CHECK(!has(listed.out, viewer_key));  // never the key itself
  CHECK(json::parse(admin({"keys", "list", "--json"}).out).at("keys").as_array().size() == 4);

  // The viewer reads but cannot write or manage keys.
  jobsctl viewer{admin.url, viewer_key, p.log_dir};
  CHECK(viewer({"list"}).status == 0);
  auto write = viewer({"submit", "processing", "noop", "--payload", "{}"});
  CHECK(write.status == 1);
  CHECK(has(write.err, "403 forbidden"));
  auto manage = viewer({"keys", "list"});
  CHECK(manage.status == 1);
  CHECK(has(manage.err, "admin role"));

  auto revoked = admin({"keys", "revoke", viewer_id});
  CHECK(revoked.status == 0);
  CHECK(has(revoked.out, "key " + viewer_id));
  CHECK(has(revoked.out, "revoked at 20"));
  auto after = viewer({"list"});
  CHECK(after.status == 1);
  CHECK(has(after.err, "401 unauthorized"));
  auto unknown = admin({"keys", "revoke", "999999"});
  CHECK(unknown.status == 1);
  CHECK(has(unknown.err, "404 not_found"));
  auto not_id = admin({"keys", "revoke", "abc"});
  CHECK(not_id.status == 2);
  CHECK(has(not_id.err, "'abc' is not a key id"));
  CHECK(admin({"keys", "create", "--role", "root"}).status == 1);
  CHECK(admin({"keys", "create", "--expires", "x", "--expires-in", "1h"}).status == 2);
  // Past the clock's range: the API says so (the sum once wrapped to the past).
  auto far = admin({"keys", "create", "--expires-in", "100000d"});
  CHECK(far.status == 1);
  CHECK(has(far.err, "between 1970 and 2262"));
}

TEST_CASE("jobsctl queues shows depth and consumers") {
  scratch s;
  platform p(s, {"processing"});
  jobsctl cli{"http://127.0.0.1:" + std::to_string(p.port), create_key(s.pg_url, "cli"), p.log_dir};
  // No email worker: these wait in the queue.
  for (int i = 0; i < 3; ++i)
    REQUIRE(cli({"submit", "email", "send", "--payload",
                 R"({"from":"a@example.com","to":["b@example.com"],"subject":"s","text":"t"})"})
                .status == 0);
  cli_result q;
  REQUIRE(wait_until(
      [&] {
        q = cli({"queues"});
        // The worker's consumer too: the fixture does not wait for it.
        return q.status == 0 && has(line_with(q.out, "email "), "email       3") &&
               line_with(q.out, "processing").starts_with("processing  0      0        1");
      },
      15s));
  CHECK(q.out.starts_with("QUEUE"));
  CHECK(has(q.out, "CONSUMERS"));
  auto j = json::parse(cli({"queues", "--json"}).out);
  for (const auto& queue : j.at("queues").as_array())
    if (queue.at("name") == "email") CHECK(queue.at("ready") == 3);
}

TEST_CASE("jobsctl pause and resume a queue; bulk cancel and retry by filter") {
  scratch s;
  platform p(s, {"processing"});
  jobsctl cli{"http://127.0.0.1:" + std::to_string(p.port), create_key(s.pg_url, "cli"), p.log_dir};
  auto paused = cli({"pause", "processing"});
  CHECK(paused.status == 0);
  CHECK(paused.out == "processing paused\n");
  CHECK(cli({"pause", "processing"}).out == "processing was already paused\n");
  CHECK(count(s.pg_url, "SELECT count(*) FROM queue_controls WHERE paused") == 1);
  // Not a queue: a bad argument, caught before any request.
  auto nope = cli({"resume", "nope"});
  CHECK(nope.status == 2);
  CHECK(has(nope.err, "'nope' is not a queue (email, processing, webhooks)"));
  // Paused: these wait queued.
  for (int i = 0; i < 3; ++i)
    REQUIRE(cli({"submit", "processing", "noop", "--payload", "{}"}).status == 0);
  REQUIRE(cli({"submit", "email", "send", "--payload",
               R"({"from":"a@example.com","to":["b@example.com"],"subject":"s","text":"t"})"})
              .status == 0);
  auto dry = cli({"bulk", "cancel", "--queue", "processing", "--dry-run"});
  CHECK(dry.status == 0);
  CHECK(dry.out ==
        "3 jobs match; without --dry-run they would be cancelled (running ones asked "
        "to stop)\n");
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'cancelled'") == 0);
  auto done = cli({"bulk", "cancel", "--queue", "processing", "--json"});
  CHECK(done.status == 0);
  auto j = json::parse(done.out);
  CHECK(j.at("applied") == 3);
  CHECK(j.at("complete") == true);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'cancelled'") == 3);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE queue = 'email' AND state = 'queued'") ==
        1);
  // The email job (no email worker here) published again, as after a broker
  // that lost its message.
  auto requeue = cli({"bulk", "requeue", "--queue", "email", "--dry-run"});
  CHECK(requeue.status == 0);
  CHECK(requeue.out == "1 job matches; without --dry-run it would be published again\n");
  CHECK(cli({"bulk", "requeue", "--queue", "email"}).out == "1 job published again\n");
  CHECK(wait_until(
      [&] {
        return count(s.pg_url,
                     "SELECT count(*) FROM job_events WHERE from_state = 'scheduled' "
                     "AND to_state = 'queued'") == 1;
      },
      15s));
  // A filter value jobsctl can check is a bad argument (2), as for list.
  CHECK(cli({"bulk", "retry", "--state", "gone"}).status == 2);
  CHECK(cli({"bulk", "cancel", "--bogus"}).status == 2);
  CHECK(cli({"bulk", "retry", "--created-after", "yesterday"}).status == 2);
  // A duration is that long ago: the three cancelled jobs were created in
  // the last hour, none more than a day ago.
  CHECK(cli({"bulk", "cancel", "--state", "queued", "--created-after", "1h", "--dry-run"}).status ==
        0);
  // A state the action does not apply to matches nothing: the API says so.
  auto wrong = cli({"bulk", "cancel", "--state", "cancelled", "--dry-run"});
  CHECK(wrong.status == 1);
  CHECK(has(wrong.err, "cancel applies to jobs that are scheduled, queued, failed, running"));
  CHECK(has(cli({"list", "--state", "cancelled", "--created-after", "1h"}).out, "cancelled"));
  CHECK(cli({"list", "--state", "cancelled", "--created-before", "1d", "--json"})
            .out.find("\"jobs\":[]") != std::string::npos);
  auto resumed = cli({"resume", "processing"});
  CHECK(resumed.status == 0);
  CHECK(resumed.out == "processing resumed\n");
  CHECK(count(s.pg_url, "SELECT count(*) FROM queue_controls WHERE paused") == 0);
  // A job that dies (a column the CSV lacks is a permanent error), retried by filter.
  REQUIRE(cli({"submit", "processing", "csv.aggregate", "--payload",
               R"({"csv":"a\n1\n","aggregates":[{"op":"sum","column":"zz"}]})"})
              .status == 0);
  REQUIRE(wait_until(
      [&] { return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'dead'") == 1; }, 15s));
  auto retried = cli({"bulk", "retry", "--queue", "processing", "--state", "dead"});
  CHECK(retried.status == 0);
  CHECK(retried.out == "1 job retried\n");
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'cancelled'") == 3);
  // The retried job runs again (and dies again: its payload is the same), so
  // it has a second attempt; its state alone would race the worker.
  CHECK(wait_until(
      [&] {
        return count(s.pg_url,
                     "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
                     "WHERE j.type = 'csv.aggregate'") == 2;
      },
      15s));
}
