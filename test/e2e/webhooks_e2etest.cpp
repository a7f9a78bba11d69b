// ctest-labels: webhooks
// The webhook worker end to end: the API and a webhooks worker as processes,
// delivering to a local HTTP(S) sink (test/support/webhook_sink.hpp) that
// the tests allow-list on loopback (except the SSRF test, which must not).
#include "common/db.hpp"
#include "common/keys.hpp"
#include "common/webhook_signature.hpp"
#include "support/live.hpp"
#include "support/openapi.hpp"
#include "support/webhook_sink.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace jobs::test;
using namespace std::chrono_literals;
namespace wh = jobs::webhooks;

namespace {

const std::string secret_a = "whsec_" + wh::base64_encode(std::string(32, 'A'));
const std::string secret_b = "whsec_" + wh::base64_encode("rotation-key-number-two-32-bytes");

// Loopback allowed, short gaps between retries, a deadline short enough for tests.
std::map<std::string, std::string> sink_env() {
  return {{"JOBS_WEBHOOK_ALLOW", "127.0.0.1/32"}, {"JOBS_WEBHOOK_TIMEOUT_MS", "5000"}};
}

// sink_env() with a breaker that pauses after 2 failures for `cooldown_ms`.
std::map<std::string, std::string> breaker_env(const std::string& cooldown_ms) {
  auto env = sink_env();
  env["JOBS_WEBHOOK_BREAKER_FAILURES"] = "2";
  env["JOBS_WEBHOOK_BREAKER_COOLDOWN_MS"] = cooldown_ms;
  return env;
}

void put_endpoint(const std::string& pg_url, const std::string& tenant, const std::string& name,
                  const std::vector<std::string>& secrets, const std::string& schedule = "{200}") {
  auto c = jobs::pg_connect(pg_url);
  pqxx::work tx(*c);
  std::string arr = "{";
  for (const auto& s : secrets) arr += (arr.size() > 1 ? "," : "") + s;
  arr += "}";
  tx.exec_params(
      "INSERT INTO webhook_endpoints (tenant_id, name, secrets, retry_schedule_ms) "
      "VALUES ($1, $2, $3::text[], $4::integer[])",
      tenant, name, arr, schedule);
  tx.commit();
}

std::string submit(http_client& h, const std::string& key, const boost::json::object& payload,
                   int max_attempts = 5) {
  boost::json::object body{{"queue", "webhooks"},
                           {"type", "deliver"},
                           {"payload", payload},
                           {"max_attempts", max_attempts}};
  auto r = h.post_json("/v1/jobs", boost::json::serialize(body), key);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return std::string(r.json().at("id").as_string());
}

boost::json::value wait_final(http_client& h, const std::string& key, const std::string& id,
                              std::chrono::milliseconds timeout = 30s) {
  boost::json::value job;
  bool done = wait_until(
      [&] {
        job = h.get("/v1/jobs/" + id, key).json();
        auto st = job.at("state").as_string();
        return st == "succeeded" || st == "dead" || st == "cancelled";
      },
      timeout);
  INFO(boost::json::serialize(job));
  REQUIRE(done);
  return job;
}

std::string state(const boost::json::value& job) {
  return std::string(job.at("state").as_string());
}

std::string error(const boost::json::value& job) {
  const auto& e = job.at("error");
  return e.is_string() ? std::string(e.as_string()) : "";
}

// The README's receiver verification snippet, run on a delivered request.
int run_readme_verifier(const sink_request& r, const std::string& secret, const std::string& dir) {
  std::ifstream in(std::string(JOBS_SOURCE_DIR) + "/README.md");
  std::string line, script;
  bool region = false, block = false;
  while (std::getline(in, line)) {
    if (line.find("<!-- webhook-verify:begin -->") != std::string::npos) region = true;
    if (line.find("<!-- webhook-verify:end -->") != std::string::npos) region = false;
    if (!region) continue;
    if (!block && line == "```sh")
      block = true;
    else if (block && line == "```")
      block = false;
    else if (block)
      script += line + "\n";
  }
  REQUIRE(script.find("openssl") != std::string::npos);
  std::ofstream(dir + "/verify.sh") << script;
  std::ofstream(dir + "/body", std::ios::binary) << r.body;
  auto cmd = fmt::format(
      "cd '{}' && WEBHOOK_ID='{}' WEBHOOK_TIMESTAMP='{}' WEBHOOK_SIGNATURE='{}' BODY_FILE=body "
      "SECRET='{}' bash verify.sh > verify.out 2>&1",
      dir, r.header("webhook-id"), r.header("webhook-timestamp"), r.header("webhook-signature"),
      secret);
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A platform with a webhooks worker, the sink, tenant acme's key and its
// `default` endpoint signing with secret_a: what most cases start from.
struct delivering {
  webhook_sink sink;
  scratch s;
  platform p{s, {"webhooks"}, sink_env()};
  std::string key = create_key(s.pg_url, "acme");
  http_client h{p.port};
  delivering() { put_endpoint(s.pg_url, "acme", "default", {secret_a}); }
};

}  // namespace

TEST_CASE("a delivery is signed per Standard Webhooks, verifiable with either secret") {
  webhook_sink sink;
  scratch s;
  platform p(s, {"webhooks"}, sink_env());
  auto key = create_key(s.pg_url, "acme");
  put_endpoint(s.pg_url, "acme", "default", {secret_a, secret_b});
  http_client h(p.port);

  boost::json::object payload{
      {"url", sink.base() + "/ok/signed?x=1"},
      {"body",
       boost::json::parse(
           R"({"type":"invoice.paid","data":{"amount":42,"rate":1.5,"tax":0.1,"note":"é"}})")},
      {"headers", {{"X-Trace", "t-1"}, {"Authorization", "Bearer receiver-token"}}}};
  auto id = submit(h, key, payload);
  auto job = wait_final(h, key, id);
  CHECK(state(job) == "succeeded");
  CHECK(job.at("result").at("status") == 200);
  CHECK(job.at("result").at("body") == R"({"ok":true})");
  CHECK(job.at("result").at("latency_ms").as_int64() >= 0);

  auto got = sink.requests("/ok/signed");
  REQUIRE(got.size() == 1);
  const auto& r = got[0];
  CHECK(r.method == "POST");
  CHECK(r.target == "/ok/signed?x=1");
  // The same JSON (PostgreSQL's jsonb keeps its own member order), byte for byte as signed.
  CHECK(boost::json::parse(r.body) ==
        boost::json::parse(
            R"({"type":"invoice.paid","data":{"amount":42,"rate":1.5,"tax":0.1,"note":"é"}})"));
  // Numbers as they were written, not boost::json's 1.5E0 (common/json/json_text.hpp).
  CHECK(r.body.find(R"("rate":1.5)") != std::string::npos);
  CHECK(r.body.find(R"("tax":0.1)") != std::string::npos);
  CHECK(r.body.find('E') == std::string::npos);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.header("x-trace") == "t-1");
  CHECK(r.header("authorization") == "Bearer receiver-token");
  CHECK(r.header("webhook-id") == id);
  auto ts = std::stoll(r.header("webhook-timestamp"));
  CHECK(std::abs(ts - std::time(nullptr)) < 60);
  // Two signatures during a rotation: one per secret, each verifies alone.
  std::istringstream sigs(r.header("webhook-signature"));
  std::vector<std::string> parts{std::istream_iterator<std::string>(sigs), {}};
  REQUIRE(parts.size() == 2);
  CHECK(parts[0] == wh::sign(id, ts, r.body, *wh::decode_secret(secret_a)));
  CHECK(parts[1] == wh::sign(id, ts, r.body, *wh::decode_secret(secret_b)));
  CHECK(parts[0] != wh::sign(id, ts, r.body + " ", *wh::decode_secret(secret_a)));

  // The README's verification snippet accepts it with either secret, and
  // refuses a changed body or the wrong secret.
  CHECK(run_readme_verifier(r, secret_a, p.log_dir) == 0);
  CHECK(run_readme_verifier(r, secret_b, p.log_dir) == 0);
  auto tampered = r;
  tampered.body.replace(tampered.body.find("42"), 2, "4200");
  CHECK(run_readme_verifier(tampered, secret_a, p.log_dir) != 0);
  CHECK(run_readme_verifier(r, "whsec_" + wh::base64_encode(std::string(32, 'Z')), p.log_dir) != 0);
}

TEST_CASE_FIXTURE(
    delivering,
    "retries: 500 then 200 succeeds once with one webhook-id; 429 waits for Retry-After") {
  auto id = submit(h, key, {{"url", sink.base() + "/fail/1/a"}, {"body", 1}});
  auto job = wait_final(h, key, id);
  CHECK(state(job) == "succeeded");
  CHECK(job.at("attempts") == 2);
  auto hist = job.at("attempt_history").as_array();
  REQUIRE(hist.size() == 2);
  CHECK(hist[0].at("outcome") == "failed");
  CHECK(std::string(hist[0].at("error").as_string()).starts_with("HTTP 500 after"));
  auto got = sink.requests("/fail/1/a");
  REQUIRE(got.size() == 2);
  CHECK(got[0].header("webhook-id") == id);
  CHECK(got[1].header("webhook-id") == id);
  CHECK(sink.requests("/fail/1/a").size() == 2);  // succeeded once: no third request

  auto id2 = submit(h, key, {{"url", sink.base() + "/retry-after/2/b"}, {"body", 2}});
  CHECK(state(wait_final(h, key, id2)) == "succeeded");
  auto got2 = sink.requests("/retry-after/2/b");
  REQUIRE(got2.size() == 2);
  CHECK(got2[1].at - got2[0].at >= 2s);  // not the endpoint's 200 ms gap
  CHECK(got2[0].header("webhook-id") == got2[1].header("webhook-id"));
}

TEST_CASE_FIXTURE(
    delivering, "400 is dead at once; 301 is not followed; timeouts and closed connections retry") {
  auto bad = submit(h, key, {{"url", sink.base() + "/status/400/a"}});
  auto moved = submit(h, key, {{"url", sink.base() + "/redirect/b"}}, 2);
  auto slow = submit(h, key, {{"url", sink.base() + "/slow/3000/c"}, {"timeout_ms", 300}}, 2);
  auto closed = submit(h, key, {{"url", sink.base() + "/close/d"}}, 2);

  auto j = wait_final(h, key, bad);
  CHECK(state(j) == "dead");
  CHECK(j.at("attempts") == 1);
  CHECK(error(j).starts_with("HTTP 400 after"));
  CHECK(sink.requests("/status/400/a").size() == 1);

  j = wait_final(h, key, moved);
  CHECK(state(j) == "dead");
  CHECK(error(j).find("HTTP 301") != std::string::npos);
  CHECK(error(j).find("not followed") != std::string::npos);
  CHECK(sink.requests("/redirect/b").size() == 2);
  CHECK(sink.requests("/ok/redirected").empty());

  j = wait_final(h, key, slow);
  CHECK(state(j) == "dead");
  CHECK(j.at("attempts") == 2);
  CHECK(error(j).find("timed out after 300 ms") != std::string::npos);
  CHECK(sink.requests("/slow/3000/c").size() == 2);

  j = wait_final(h, key, closed);
  CHECK(state(j) == "dead");
  CHECK(j.at("attempts") == 2);
  CHECK(error(j).find("failed") != std::string::npos);
  // Two attempts; each may send twice, since a keep-alive connection closed
  // without an answer is retried once on a fresh one (receivers de-duplicate
  // on webhook-id).
  auto closes = sink.requests("/close/d").size();
  CHECK(closes >= 2);
  CHECK(closes <= 4);

  // Bad input is refused by the API before anything is recorded.
  auto r = h.post_json(
      "/v1/jobs",
      R"({"queue":"webhooks","type":"deliver","payload":{"url":"ftp://x/","headers":{"Host":"x"}}})",
      key);
  CHECK(r.status == 400);
  CHECK(r.json().at("code") == "payload_invalid");
  // A percent-encoded line break in the host, which the Host header would
  // carry as a header (or a second request) of the tenant's making.
  auto split = h.post_json("/v1/jobs",
                           R"({"queue":"webhooks","type":"deliver","payload":{"url":)"
                           R"("http://sink.test%00%0d%0aX-Injected%3a%20yes%0d%0a:80/hook"}})",
                           key);
  CHECK(split.status == 400);
  CHECK(split.json().at("code") == "payload_invalid");
  CHECK(split.body.find("url's host must be a DNS name") != std::string::npos);
  // A job naming an endpoint the tenant does not have is not sent; with one
  // attempt allowed it is dead after it.
  auto none = submit(h, key, {{"url", sink.base() + "/ok/none"}, {"endpoint", "nope"}}, 1);
  j = wait_final(h, key, none);
  CHECK(state(j) == "dead");
  CHECK(j.at("attempts") == 1);
  CHECK(error(j).find("no webhook endpoint \"nope\"") != std::string::npos);
  CHECK(sink.requests("/ok/none").empty());
}

TEST_CASE_FIXTURE(delivering,
                  "a receiver streaming one endless chunk size line fails the attempt, not the "
                  "worker's memory") {
  // 32 MiB of one chunk extension: the client's read buffer stops it at
  // 80 KiB (it used to hold all of it, gigabytes for a receiver that never
  // stops).
  auto id = submit(h, key, {{"url", sink.base() + "/chunk-ext/32768/a"}}, 1);
  auto j = wait_final(h, key, id);
  CHECK(state(j) == "dead");
  CHECK(error(j).find("a chunk size line of its response was longer than 81920 bytes") !=
        std::string::npos);
  // The worker delivers on.
  CHECK(state(wait_final(h, key, submit(h, key, {{"url", sink.base() + "/ok/after"}}))) ==
        "succeeded");
}

TEST_CASE_FIXTURE(delivering,
                  "an error page answering a delivery is quoted on one line, 200 bytes at most") {
  auto id = submit(h, key, {{"url", sink.base() + "/html/502/page"}}, 2);
  auto j = wait_final(h, key, id);
  CHECK(state(j) == "dead");
  REQUIRE(sink.requests("/html/502/page").size() == 2);
  auto hist = j.at("attempt_history").as_array();
  REQUIRE(hist.size() == 2);
  for (const auto& e : {error(j), std::string(hist[0].at("error").as_string())}) {
    INFO(e);
    CHECK(e.starts_with("HTTP 502 after "));
    CHECK(e.find(" ms: <!DOCTYPE html> <html> <head><title>502 Bad Gateway</title></head> <body> "
                 "<p>The upstream server did not answer (line 0).</p>") != std::string::npos);
    CHECK(e.find_first_of("\r\n\t") == std::string::npos);
    CHECK(e.ends_with("\u2026"));
    CHECK(e.size() <= 240);
  }
}

TEST_CASE_FIXTURE(
    delivering, "a body with a NUL, a malformed byte, cut inside a character, is stored as UTF-8") {
  auto id = submit(h, key, {{"url", sink.base() + "/bytes/a"}}, 1);
  auto j = wait_final(h, key, id);
  CHECK(state(j) == "succeeded");
  std::string body(j.at("result").at("body").as_string());
  CHECK(body.starts_with("a\uFFFDb\uFFFDc\u20AC\u20AC"));
  CHECK(body.size() <= 4096);
  CHECK(body.size() >= 4090);
  CHECK(body.ends_with("\u20AC"));  // whole characters only

  // A short body keeps all of its text after the bytes replaced.
  auto short_id = submit(h, key, {{"url", sink.base() + "/nul/a"}}, 1);
  auto s = wait_final(h, key, short_id);
  REQUIRE(state(s) == "succeeded");
  CHECK(s.at("result").at("body").as_string() == "ok\r\n\uFFFD\uFFFD\uFFFDline2");
}

TEST_CASE("an endpoint created after a lookup missed it: no job dies of the miss") {
  webhook_sink sink;
  scratch s;
  platform p(s, {"webhooks"}, sink_env());
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  // Submitted before the endpoint exists: the attempt fails, nothing is
  // sent, and the job waits for its next attempt (the schedule's 5 s).
  auto early = submit(h, key, {{"url", sink.base() + "/ok/early"}, {"body", 1}}, 3);
  boost::json::value job;
  REQUIRE(wait_until(
      [&] {
        job = h.get("/v1/jobs/" + early, key).json();
        return job.at("attempts").as_int64() >= 1 && state(job) != "running" &&
               state(job) != "queued";
      },
      20s));
  INFO(boost::json::serialize(job));
  CHECK(state(job) == "failed");
  CHECK(error(job).find("no webhook endpoint \"default\"") != std::string::npos);
  CHECK(sink.requests("/ok/early").empty());

  // Created now, within the second a cached miss would have lasted: a job
  // submitted after the 201 must find it.
  auto r = h.request(boost::beast::http::verb::put, "/v1/webhook-endpoints/default",
                     R"({"secrets":[")" + secret_a + R"("]})",
                     {{"authorization", "Bearer " + key}, {"content-type", "application/json"}});
  REQUIRE(r.status == 201);
  auto after = submit(h, key, {{"url", sink.base() + "/ok/after"}, {"body", 2}}, 1);
  job = wait_final(h, key, after);
  CHECK(state(job) == "succeeded");
  CHECK(sink.requests("/ok/after").size() == 1);

  // The early job is delivered by its second attempt.
  job = wait_final(h, key, early);
  CHECK(state(job) == "succeeded");
  CHECK(job.at("attempts") == 2);
  auto got = sink.requests("/ok/early");
  REQUIRE(got.size() == 1);
  CHECK(got[0].header("webhook-signature") ==
        wh::sign(early, std::stoll(got[0].header("webhook-timestamp")), got[0].body,
                 *wh::decode_secret(secret_a)));
}

TEST_CASE("1,000 deliveries with 300 in flight at once all arrive exactly once") {
  webhook_sink sink;
  scratch s;
  auto env = sink_env();
  env["JOBS_WORKER_ASYNC_INFLIGHT"] = "300";
  // The worker starts once all are submitted: a backlog, whatever the
  // submission rate of a busy machine.
  platform p(s, {}, env);
  auto key = create_key(s.pg_url, "acme");
  put_endpoint(s.pg_url, "acme", "default", {secret_a});
  constexpr int total = 1000, threads = 4;
  std::vector<std::thread> clients;
  std::atomic<int> refused{0};
  for (int t = 0; t < threads; ++t)
    clients.emplace_back([&, t] {
      http_client h(p.port);
      for (int i = t; i < total; i += threads) {
        boost::json::object body{
            {"queue", "webhooks"},
            {"type", "deliver"},
            {"payload", {{"url", fmt::format("{}/slow/2000/{}", sink.base(), i)}, {"body", i}}}};
        if (h.post_json("/v1/jobs", boost::json::serialize(body), key).status != 202) ++refused;
      }
    });
  for (auto& c : clients) c.join();
  REQUIRE(refused == 0);
  p.add_worker("webhooks", env);
  bool done = wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
      },
      120s);
  CHECK_MESSAGE(
      done, "succeeded: ", count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"));
  std::map<std::string, int> per_target;
  for (const auto& r : sink.requests()) ++per_target[r.target];
  CHECK(per_target.size() == total);
  int twice = 0;
  for (const auto& [t, n] : per_target) twice += n != 1;
  CHECK(twice == 0);
  MESSAGE("peak in flight at the sink: ", sink.peak_in_flight(),
          ", connections: ", sink.connections());
  CHECK(sink.peak_in_flight() >= 270);
  CHECK(sink.peak_in_flight() <= 300);
}

TEST_CASE("TLS: verification fails without the test CA and passes with it") {
  namespace fs = std::filesystem;
  auto dir = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / fmt::format("tls-{}", getpid());
  fs::create_directories(dir);
  auto cmd = fmt::format(
      "cd '{}' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=jobs-test-ca "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
      "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
      "-out srv.csr -subj /CN=localhost "
      "&& printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext "
      "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ext) > '{}/openssl.log' 2>&1",
      dir.string(), dir.string());
  REQUIRE(std::system(("(" + cmd).c_str()) == 0);
  webhook_sink sink((dir / "srv.pem").string(), (dir / "srv.key").string());
  scratch s;
  platform p(s, {}, sink_env());
  auto key = create_key(s.pg_url, "acme");
  put_endpoint(s.pg_url, "acme", "default", {secret_a});
  http_client h(p.port);
  auto https = fmt::format("https://localhost:{}", sink.port());
  {
    p.add_worker("webhooks");
    auto id = submit(h, key, {{"url", https + "/ok/untrusted"}}, 1);
    auto j = wait_final(h, key, id);
    CHECK(state(j) == "dead");
    CHECK(error(j).find("TLS handshake") != std::string::npos);
    CHECK(sink.requests().empty());
    p.workers.clear();  // SIGTERM, waits
  }
  auto env = sink_env();
  env["JOBS_WEBHOOK_CA_FILE"] = (dir / "ca.pem").string();
  p.add_worker("webhooks", env);
  auto by_name = submit(h, key, {{"url", https + "/ok/trusted"}, {"body", "secure"}});
  auto by_ip = submit(h, key, {{"url", sink.base() + "/ok/by-ip"}});
  CHECK(state(wait_final(h, key, by_name)) == "succeeded");
  CHECK(state(wait_final(h, key, by_ip)) == "succeeded");
  auto got = sink.requests("/ok/trusted");
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == R"("secure")");
  CHECK(got[0].header("host") == fmt::format("localhost:{}", sink.port()));
}

TEST_CASE("SSRF: loopback, private, link-local, CGNAT, multicast, unspecified are refused") {
  webhook_sink sink;
  scratch s;
  // No allow-list: the sink on loopback must never be reached.
  platform p(s, {"webhooks"}, {{"JOBS_WEBHOOK_TIMEOUT_MS", "3000"}});
  auto key = create_key(s.pg_url, "acme");
  put_endpoint(s.pg_url, "acme", "default", {secret_a});
  http_client h(p.port);
  auto port = sink.port();
  std::vector<std::string> hosts{"127.0.0.1",
                                 "localhost",
                                 "2130706433",
                                 "0177.0.0.1",
                                 "0x7f.1",
                                 "0x7f000001",
                                 "127.1",
                                 "[::1]",
                                 "[::ffff:127.0.0.1]",
                                 "[::ffff:7f00:1]",
                                 "[64:ff9b::7f00:1]",
                                 "[2002:7f00:1::1]",
                                 "0.0.0.0",
                                 "0",
                                 "[::]",
                                 "10.0.0.1",
                                 "172.16.0.1",
                                 "192.168.0.1",
                                 "169.254.169.254",
                                 "[fe80::1]",
                                 "[fd00::1]",
                                 "100.64.0.1",
                                 "224.0.0.1",
                                 "[ff02::1]",
                                 "255.255.255.255"};
  std::map<std::string, std::string> ids;
  for (const auto& host : hosts)
    ids[host] = submit(h, key, {{"url", fmt::format("http://{}:{}/ok/ssrf", host, port)}}, 1);
  // An address literal is refused before the endpoint is looked up: a job
  // naming an endpoint that does not exist dies at once, not after retries.
  auto no_endpoint = submit(
      h, key,
      {{"url", fmt::format("http://127.0.0.1:{}/ok/ssrf", port)}, {"endpoint", "not-created"}}, 5);
  ids["127.0.0.1 to a missing endpoint"] = no_endpoint;
  for (const auto& [host, id] : ids) {
    CAPTURE(host);
    auto j = wait_final(h, key, id);
    CHECK(state(j) == "dead");
    CHECK(j.at("attempts") == 1);
    CHECK(error(j).starts_with("destination refused"));
  }
  CHECK(sink.connections() == 0);
  CHECK(sink.count() == 0);
}

TEST_CASE("endpoints through the API; the circuit breaker pauses a failing endpoint") {
  webhook_sink sink;
  scratch s;
  platform p(s, {"webhooks"}, breaker_env("2500"));
  auto key = create_key(s.pg_url, "acme");
  std::string submitter;
  {
    auto c = jobs::pg_connect(s.pg_url);
    submitter = jobs::create_api_key(*c, jobs::tenant_id{"acme"}, "s", "submitter");
  }
  http_client h(p.port);
  auto put = [&](const std::string& name, const std::string& body, const std::string& k) {
    return h.request(boost::beast::http::verb::put, "/v1/webhook-endpoints/" + name, body,
                     {{"authorization", "Bearer " + k}, {"content-type", "application/json"}});
  };
  auto body = R"({"secrets":[")" + secret_a + R"("],"retry_schedule_ms":[100]})";
  CHECK(put("flaky", body, submitter).status == 403);
  CHECK(put("flaky", R"({"secrets":["whsec_x"]})", key).status == 400);
  auto r = put("flaky", body, key);
  REQUIRE(r.status == 201);
  CHECK(openapi_contract().violations("WebhookEndpoint", r.json()).empty());
  CHECK(r.body.find("whsec_") == std::string::npos);  // never echoed
  CHECK(r.json().at("secret_count") == 1);
  CHECK(r.json().at("state") == "active");
  // A rotation: the new and the old secret; the breaker state stays.
  r = put("flaky",
          R"({"secrets":[")" + secret_b + R"(",")" + secret_a + R"("],"retry_schedule_ms":[100]})",
          key);
  CHECK(r.status == 200);
  CHECK(r.json().at("secret_count") == 2);
  auto list = h.get("/v1/webhook-endpoints", key);
  CHECK(list.status == 200);
  CHECK(openapi_contract().violations("WebhookEndpointList", list.json()).empty());
  CHECK(list.json().at("endpoints").as_array().size() == 1);
  CHECK(h.get("/v1/webhook-endpoints/nope", key).status == 404);
  // A name that cannot be an endpoint's is refused as bad input.
  auto misnamed = put(std::string(65, 'a'), R"({"secrets":[")" + secret_a + R"("]})", key);
  CHECK(misnamed.status == 400);
  CHECK(misnamed.json().at("code") == "invalid_field");
  // A path segment is named in the detail, as every route names it.
  CHECK_FALSE(misnamed.json().as_object().contains("parameter"));
  CHECK(std::string(misnamed.json().at("detail").as_string()).starts_with("the endpoint's name"));

  // Fails three times, then answers 200. After two failures the endpoint is
  // paused for 2.5 s: the job waits (attempts not used), then fails once
  // more (paused again), then succeeds, which closes the breaker.
  auto id = submit(h, key, {{"url", sink.base() + "/fail/3/cb"}, {"endpoint", "flaky"}}, 10);
  bool paused = wait_until(
      [&] { return h.get("/v1/webhook-endpoints/flaky", key).json().at("state") == "paused"; },
      20s);
  REQUIRE(paused);
  auto ep = h.get("/v1/webhook-endpoints/flaky", key).json();
  CHECK(ep.at("consecutive_failures").as_int64() >= 2);
  CHECK(ep.at("paused_until").is_string());
  auto job = wait_final(h, key, id, 30s);
  CHECK(state(job) == "succeeded");
  CHECK(job.at("attempts") == 4);
  // Held by the pause: attempts not counted, each saying why it waited.
  int held = 0;
  for (const auto& a : job.at("attempt_history").as_array())
    if (a.at("outcome") == "scheduled") {
      ++held;
      CHECK(a.at("error") == "endpoint flaky paused by its circuit breaker");
    }
  CHECK(held >= 1);
  auto got = sink.requests("/fail/3/cb");
  REQUIRE(got.size() == 4);
  CHECK(got[2].at - got[1].at >= 2s);  // held by the pause, not the 100 ms gap
  auto sigs = got[3].header("webhook-signature");
  CHECK(sigs.find(' ') != std::string::npos);  // both rotation secrets sign
  ep = h.get("/v1/webhook-endpoints/flaky", key).json();
  CHECK(ep.at("consecutive_failures") == 0);
  CHECK(ep.at("state") == "active");

  // Deleted (admin keys only): it answers as it was, then is gone; a job
  // naming it is not sent unsigned, and deleting again is 404.
  auto del = [&](const std::string& name, const std::string& k) {
    return h.request(boost::beast::http::verb::delete_, "/v1/webhook-endpoints/" + name, "",
                     {{"authorization", "Bearer " + k}});
  };
  CHECK(del("flaky", submitter).status == 403);
  auto gone = del("flaky", key);
  REQUIRE(gone.status == 200);
  CHECK(openapi_contract().violations("WebhookEndpoint", gone.json()).empty());
  CHECK(gone.json().at("name") == "flaky");
  CHECK(h.get("/v1/webhook-endpoints/flaky", key).status == 404);
  CHECK(del("flaky", key).status == 404);
  CHECK(del(std::string(65, 'a'), key).status == 404);
  std::this_thread::sleep_for(1100ms);  // past the workers' one-second cache
  auto orphan = submit(h, key, {{"url", sink.base() + "/ok/orphan"}, {"endpoint", "flaky"}}, 1);
  job = wait_final(h, key, orphan);
  CHECK(state(job) == "dead");
  CHECK(error(job).find("no webhook endpoint \"flaky\"") != std::string::npos);
  CHECK(sink.requests("/ok/orphan").empty());
}

TEST_CASE("after a pause one trial delivery goes out alone; its success sends the rest at once") {
  webhook_sink sink;
  scratch s;
  platform p(s, {"webhooks"}, breaker_env("1500"));
  auto key = create_key(s.pg_url, "acme");
  put_endpoint(s.pg_url, "acme", "down", {secret_a}, "{100}");
  http_client h(p.port);
  auto endpoint = [&] { return h.get("/v1/webhook-endpoints/down", key).json(); };
  auto endpoint_state = [&] { return std::string(endpoint().at("state").as_string()); };
  sink.set_down(true);
  // With 30 s request timeouts a trial's lease (its timeouts and a second)
  // is 36 s, much longer than the jobs may take once the receiver is back.
  auto job = [&](const std::string& path) {
    return submit(h, key,
                  {{"url", sink.base() + path}, {"endpoint", "down"}, {"timeout_ms", 30000}}, 20);
  };
  std::vector<std::string> ids{job("/down/first/1"), job("/down/first/2")};
  REQUIRE(wait_until([&] { return endpoint_state() == "paused"; }, 20s));
  for (int i = 0; i < 10; ++i) ids.push_back(job("/down/held/" + std::to_string(i)));
  auto before = sink.requests("/down/").size();
  std::this_thread::sleep_for(6s);  // about four pauses and their ends
  auto during = sink.requests("/down/").size() - before;
  CHECK(during >= 1);  // trials went out
  CHECK(during <= 6);  // one at each pause's end, not each of the twelve jobs
  sink.set_down(false);
  auto back = std::chrono::steady_clock::now();
  std::int64_t attempts = 0;
  int waited = 0;
  for (const auto& id : ids) {
    auto j = wait_final(h, key, id, 60s);
    CHECK(state(j) == "succeeded");
    attempts += j.at("attempts").as_int64();
    for (const auto& a : j.at("attempt_history").as_array())
      if (a.at("error") == "endpoint down waits for its circuit breaker's trial delivery") ++waited;
  }
  // Made due by the successful trial, not at the end of its lease.
  CHECK(std::chrono::steady_clock::now() - back < 20s);
  CHECK(waited >= 1);
  // Only the first failures and the trials used attempts; waiting used none.
  CHECK(attempts <= static_cast<std::int64_t>(ids.size() + 2 + during + 1));
  CHECK(endpoint_state() == "active");
  CHECK(endpoint().at("consecutive_failures") == 0);

  // A trial out shows as such, with its lease.
  {
    auto c = jobs::pg_connect(s.pg_url);
    pqxx::work w(*c);
    w.exec(
        "UPDATE webhook_endpoints SET consecutive_failures = 2, "
        "trial_until = now() + interval '10 seconds'");
    w.commit();
  }
  auto ep = endpoint();
  CHECK(openapi_contract().violations("WebhookEndpoint", ep).empty());
  CHECK(ep.at("state") == "trial");
  CHECK(ep.at("trial_until").is_string());
}

TEST_CASE_FIXTURE(delivering,
                  "a cancel, or the job's timeout, stops a delivery in flight at once") {
  auto id = submit(h, key, {{"url", sink.base() + "/slow/20000/cancel"}, {"timeout_ms", 30000}});
  REQUIRE(wait_until([&] { return !sink.requests("/slow/20000/cancel").empty(); }, 10s));
  auto start = std::chrono::steady_clock::now();
  CHECK(h.post_json("/v1/jobs/" + id + "/cancel", "", key).status == 202);
  auto job = wait_final(h, key, id, 10s);
  CHECK(state(job) == "cancelled");
  CHECK(std::chrono::steady_clock::now() - start < 3s);  // not the 20 s answer

  // The job's own execution timeout (500 ms) is shorter than the delivery's.
  boost::json::object body{
      {"queue", "webhooks"},
      {"type", "deliver"},
      {"timeout_ms", 500},
      {"max_attempts", 1},
      {"payload", {{"url", sink.base() + "/slow/20000/timeout"}, {"timeout_ms", 30000}}}};
  auto r = h.post_json("/v1/jobs", boost::json::serialize(body), key);
  REQUIRE(r.status == 202);
  start = std::chrono::steady_clock::now();
  job = wait_final(h, key, std::string(r.json().at("id").as_string()), 10s);
  CHECK(state(job) == "dead");
  CHECK(error(job).find("timed out after 500 ms") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}
