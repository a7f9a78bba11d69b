// ctest-labels: dashboard
// jobsctl's job commands against a running platform: submit (stdin, file,
// inline, options, idempotency), get, list with filters and pages, watch,
// cancel, retry; their output and exit statuses, and the errors a user
// meets (bad arguments, bad key, unknown job, invalid payload, no server).
#include "support/jobsctl.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>

#include <csignal>
#include <fstream>
#include <future>
#include <thread>

using namespace jobs::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The id on the first line of a human submit answer ("id:  ...").
std::string first_id(const std::string& out) {
  auto line = out.substr(0, out.find('\n'));
  return line.size() < 36 ? line : line.substr(line.size() - 36);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("jobsctl runs, follows, lists, cancels and retries jobs") {
  scratch s;
  platform p(s, {"processing"}, {}, /*test_handlers=*/true);
  jobsctl cli{"http://127.0.0.1:" + std::to_string(p.port), create_key(s.pg_url, "cli"), p.log_dir};

  // submit from stdin; watch to the end; get.
  auto sub = cli({"submit", "processing", "hash", "-q"}, R"({"input":"hello"})");
  INFO(sub.err);
  REQUIRE(sub.status == 0);
  auto id = trimmed(sub.out);
  REQUIRE(id.size() == 36);
  auto w = cli({"watch", id, "--interval", "100ms", "--timeout", "30s"});
  CHECK(w.status == 0);
  CHECK(has(w.out, "succeeded"));
  CHECK(has(w.out, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
  auto g = cli({"get", id});
  CHECK(g.status == 0);
  CHECK(has(g.out, "state:"));
  CHECK(has(g.out, "succeeded"));
  CHECK(has(g.out, "1/5"));
  CHECK(has(g.out, "ATTEMPT  OUTCOME"));
  auto gj = cli({"get", id, "--json"});
  CHECK(gj.status == 0);
  CHECK(json::parse(gj.out).at("state") == "succeeded");

  // submit from a file with options; the API got them.
  std::ofstream(p.log_dir + "/payload.json") << R"({"sleep_ms":0})";
  auto f = cli({"submit", "processing", "noop", p.log_dir + "/payload.json", "--priority", "7",
                "--max-attempts", "2", "--job-timeout", "90s", "--backoff-base", "2s", "--jitter",
                "none", "--json", "--wait"});
  CHECK(f.status == 0);
  auto first_line = f.out.substr(0, f.out.find('\n'));
  auto fid = std::string(json::parse(first_line).at("id").as_string());
  auto fj = json::parse(cli({"get", fid, "--json"}).out);
  CHECK(fj.at("priority") == 7);
  CHECK(fj.at("max_attempts") == 2);
  CHECK(fj.at("timeout_ms") == 90000);
  CHECK(has(f.out, R"("state":"succeeded")"));  // --wait --json: the job as it ended

  // A job that fails for good: --wait exits 4; retry gives it a new life.
  auto dead = cli({"submit", "processing", "test.fail_always", "--payload", "{}", "--max-attempts",
                   "1", "--wait", "--interval", "100ms"});
  CHECK(dead.status == 4);
  CHECK(has(dead.out, "dead"));
  auto did = first_id(dead.out);
  auto r = cli({"retry", did});
  CHECK(r.status == 0);
  CHECK(has(r.out, did + "  scheduled"));
  CHECK(cli({"watch", did, "--interval", "100ms"}).status == 4);
  auto again = cli({"retry", id});  // a succeeded job
  CHECK(again.status == 1);
  CHECK(has(again.err, "409 not_retryable"));

  // Idempotency: the same key twice is one job, the second says so.
  auto k1 = cli({"submit", "processing", "noop", "--payload", "{}", "--idempotency-key", "o-1"});
  auto k2 = cli({"submit", "processing", "noop", "--payload", "{}", "--idempotency-key", "o-1"});
  CHECK(k1.status == 0);
  CHECK(k2.status == 0);
  CHECK(first_id(k1.out) == first_id(k2.out));
  CHECK(has(k2.out, "replayed"));
  // A key the API would refuse is a usage error here, with the rule.
  auto bad_key = cli({"submit", "processing", "noop", "--payload", "{}", "--idempotency-key",
                      std::string("k\x01")});
  CHECK(bad_key.status == 2);
  CHECK(has(bad_key.err, "1 to 255 printable ASCII characters"));

  // Scheduled, then cancelled; a 2nd cancel is refused; watch times out.
  auto later = cli({"submit", "processing", "noop", "--payload", "{}", "--delay", "1h", "-q"});
  auto lid = trimmed(later.out);
  auto wt = cli({"watch", lid, "--timeout", "1s", "--interval", "200ms"});
  CHECK(wt.status == 5);
  CHECK(has(wt.out, "scheduled"));
  CHECK(has(wt.err, "still scheduled"));
  auto c1 = cli({"cancel", lid});
  CHECK(c1.status == 0);
  CHECK(has(c1.out, lid + "  cancelled"));
  auto c2 = cli({"cancel", lid});
  CHECK(c2.status == 1);
  CHECK(has(c2.err, "409 not_cancellable"));
  CHECK(has(c2.err, "the job is already final (cancelled)"));
  CHECK(cli({"watch", lid}).status == 4);

  // list: filters, table, pages.
  auto l = cli({"list", "--queue", "processing", "--state", "succeeded"});
  CHECK(l.status == 0);
  CHECK(l.out.starts_with("ID"));
  CHECK(has(l.out, id));
  CHECK(!has(l.out, lid));
  auto lc = cli({"list", "--state", "cancelled", "--json"});
  CHECK(json::parse(lc.out).at("jobs").as_array().size() == 1);
  auto page = cli({"list", "--limit", "1"});
  CHECK(page.status == 0);
  CHECK(has(page.err, "more: add --cursor"));
  auto every = cli({"list", "--limit", "1", "--all"});
  CHECK(every.status == 0);
  for (const auto& x : {id, fid, did, lid}) CHECK(has(every.out, x));
  // --type and --search are GET /v1/jobs filters (type, q).
  auto typed = cli({"list", "--type", "hash"});
  CHECK(typed.status == 0);
  CHECK(has(typed.out, id));
  CHECK(!has(typed.out, lid));
  auto found = cli({"list", "--search", id});
  CHECK(found.status == 0);
  CHECK(has(found.out, id));
  CHECK(!has(found.out, lid));
  auto after = cli({"list", "--created-after", "2100-01-01T00:00:00Z"});
  CHECK(after.status == 0);
  CHECK(!has(after.out, id));
  // Not a time at all, or a time of the right shape but no real date:
  // jobsctl refuses both (2), reading times as the API does.
  for (const char* t : {"yesterday", "2026-13-45T00:00:00Z"}) {
    auto not_time = cli({"list", "--created-after", t});
    CHECK(not_time.status == 2);
    CHECK(has(not_time.err, "is not an RFC 3339 time"));
  }

  // Errors: unknown job, invalid payload, payload not JSON.
  auto missing = cli({"get", "0191e4a0-0000-7000-8000-000000000000"});
  CHECK(missing.status == 1);
  CHECK(has(missing.err, "404 not_found"));
  CHECK(has(missing.err, "no job with this id"));
  auto invalid = cli({"submit", "processing", "hash", "--payload", R"({"input":42})"});
  CHECK(invalid.status == 1);
  CHECK(has(invalid.err, "payload_invalid"));
  CHECK(has(invalid.err, "[at /payload/input]"));
  auto invalid_json =
      cli({"submit", "processing", "hash", "--payload", R"({"input":42})", "--json"});
  CHECK(json::parse(invalid_json.out).at("code") == "payload_invalid");
  auto not_json = cli({"submit", "processing", "hash"}, "{nope");
  CHECK(not_json.status == 2);
  CHECK(has(not_json.err, "the payload is not JSON"));
}

TEST_CASE("jobsctl says what is wrong with its arguments, its key and its server") {
  scratch s;
  platform p(s, {});
  auto url = "http://127.0.0.1:" + std::to_string(p.port);
  jobsctl cli{url, create_key(s.pg_url, "cli"), p.log_dir};

  auto help = cli({"--help"});
  CHECK(help.status == 0);
  CHECK(has(help.out, "keys revoke ID"));
  CHECK(has(help.out, "Exit status"));
  CHECK(has(cli({"submit", "--help"}).out, "--idempotency-key KEY"));
  CHECK(cli({}).status == 2);
  auto unknown = cli({"frobnicate"});
  CHECK(unknown.status == 2);
  CHECK(has(unknown.err, "unknown command 'frobnicate'"));
  auto no_id = cli({"get"});
  CHECK(no_id.status == 2);
  CHECK(has(no_id.err, "'get' needs ID"));
  CHECK(has(no_id.err, "jobsctl get --help"));
  auto bad_option = cli({"list", "--colour"});
  CHECK(bad_option.status == 2);
  CHECK(has(bad_option.err, "unknown option '--colour'"));
  CHECK(cli({"list", "--limit"}).status == 2);
  // Caught by jobsctl (2), not sent for the API to refuse (1).
  for (const char* limit : {"0", "abc", "501", "-1", "5x"}) {
    CAPTURE(limit);
    auto bad_limit = cli({"list", "--limit", limit});
    CHECK(bad_limit.status == 2);
    CHECK(has(bad_limit.err,
              "--limit: '" + std::string(limit) + "' is not an integer from 1 to 500"));
  }
  CHECK(cli({"list", "--limit", "500"}).status == 0);
  auto bad_state = cli({"list", "--state", "done"});
  CHECK(bad_state.status == 2);
  CHECK(has(bad_state.err, "--state: 'done' is not a job state (scheduled, queued, running,"));
  auto bad_queue = cli({"list", "--queue", "mail"});
  CHECK(bad_queue.status == 2);
  CHECK(has(bad_queue.err, "--queue: 'mail' is not a queue (email, processing, webhooks)"));
  CHECK(cli({"list", "--state", "dead", "--queue", "email"}).status == 0);

  CHECK(has(cli({"watch", "x", "--timeout", "soon"}).err, "not a duration"));
  // submit's values out of the API's range, --wait's included, are caught
  // before the job is submitted: none is left behind.
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused_first{
      {{"--wait", "--interval", "99ms"}, "--interval: at least 100ms"},
      {{"--wait", "--timeout", "0s"}, "--timeout: more than 0"},
      {{"--wait", "--timeout", "abc"}, "not a duration"},
      {{"--jitter", "half"}, "--jitter: 'half' is not full, equal or none"},
      {{"--job-timeout", "0s"}, "--job-timeout: from 1ms to 1d"},
      {{"--job-timeout", "2d"}, "--job-timeout: from 1ms to 1d"},
      {{"--delay", "8d"}, "--delay: at most 7d"},
      {{"--backoff-cap", "0ms"}, "--backoff-cap: from 1ms to 7d"},
      {{"--backoff-base", "1h", "--backoff-cap", "1s"},
       "--backoff-cap must not be smaller than --backoff-base"},
      {{"--run-at", "tomorrow"}, "--run-at: 'tomorrow' is not an RFC 3339 time"},
      {{"--run-at", "2030-02-30T09:00:00Z"}, "is not an RFC 3339 time"},
      {{"--run-at", "2030-01-01T00:00:60Z"}, "is not an RFC 3339 time"}};
  for (const auto& [extra, says] : refused_first) {
    std::vector<std::string> args{"submit", "processing", "noop", "--payload", "{}"};
    args.insert(args.end(), extra.begin(), extra.end());
    CAPTURE(says);
    auto r = cli(args);
    CHECK(r.status == 2);
    CHECK(has(r.err, says));
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 0);
  CHECK(
      has(cli({"submit", "processing", "noop", "--priority", "high"}, "{}").err, "not an integer"));
  // A group without its subcommand names them; its --help lists them.
  auto bulk = cli({"bulk"});
  CHECK(bulk.status == 2);
  CHECK(has(bulk.err, "'bulk' needs a subcommand: cancel, retry, requeue"));
  auto keys_help = cli({"keys", "--help"});
  CHECK(keys_help.status == 0);
  CHECK(has(keys_help.out, "Usage: jobsctl keys SUBCOMMAND"));
  CHECK(has(keys_help.out, "keys revoke"));

  // The key: none, a bad one, from a file.
  jobsctl keyless{url, "", p.log_dir};
  auto none = keyless({"list"});
  CHECK(none.status == 2);
  CHECK(has(none.err, "no API key"));
  auto bad = keyless({"list", "--key", "jk_nonsense"});
  CHECK(bad.status == 1);
  CHECK(has(bad.err, "401 unauthorized"));
  CHECK(has(bad.err, "hint: check the API key"));
  std::ofstream(p.log_dir + "/key") << cli.key << "\n";
  CHECK(keyless({"list", "--key-file", p.log_dir + "/key"}).status == 0);
  CHECK(keyless({"list"}, {}, {{"JOBS_API_KEY_FILE", p.log_dir + "/key"}}).status == 0);
  CHECK(keyless({"list", "--key-file", p.log_dir + "/no-such-key"}).status == 2);

  // The server: none there, a bad URL, a flag over the environment.
  auto nobody = "http://127.0.0.1:" + std::to_string(free_port());
  auto refused = cli({"list", "--url", nobody});
  CHECK(refused.status == 3);
  CHECK(has(refused.err, "could not connect to " + nobody));
  CHECK(cli({"list", "--url", "ftp://x"}).status == 2);
  jobsctl elsewhere{nobody, cli.key, p.log_dir};
  CHECK(elsewhere({"list", "--url", url}).status == 0);
}

TEST_CASE("jobsctl watch rides out an API restart") {
  scratch s;
  platform p(s, {"processing"});
  jobsctl cli{"http://127.0.0.1:" + std::to_string(p.port), create_key(s.pg_url, "cli"), p.log_dir};
  auto id =
      trimmed(cli({"submit", "processing", "noop", "--payload", "{}", "--delay", "4s", "-q"}).out);
  REQUIRE(id.size() == 36);
  auto watching = std::async(std::launch::async, [&] {
    return cli({"watch", id, "--interval", "200ms", "--timeout", "60s"});
  });
  // Not a wait for an event: had the watch not begun, it meets the outage
  // at its first poll, and the checks below hold just the same.
  std::this_thread::sleep_for(1s);
  p.api->signal(SIGTERM);
  REQUIRE(p.api->wait(15s) >= 0);
  std::this_thread::sleep_for(1500ms);
  p.api = std::make_unique<process>(binary("jobs-api"), std::vector<std::string>{}, p.env,
                                    p.log_dir + "/api-again.log");
  auto w = watching.get();
  INFO(w.err);
  CHECK(w.status == 0);
  CHECK(has(w.out, "succeeded"));
  CHECK(has(w.err, "could not connect"));
  CHECK(has(w.err, "trying again"));
  CHECK(has(w.err, "the API answers again"));
}
