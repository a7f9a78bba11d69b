// ctest-labels: security
// API keys and rate limits end to end: keys created, listed and revoked
// through the API (a revocation holds at once on every API process, however
// long they cache lookups), keys that expire, a tenant over its rate while
// another carries on, and no key in any log.
#include "common/time.hpp"
#include "support/files.hpp"
#include "support/live.hpp"
#include "support/raw_conn.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

const std::string noop = R"({"queue":"processing","type":"noop","payload":{}})";

http_reply call(http_client& h, http::verb v, const std::string& target, const std::string& key,
                const std::string& body = {}) {
  std::map<std::string, std::string> headers{{"authorization", "Bearer " + key}};
  if (!body.empty()) headers["content-type"] = "application/json";
  return h.request(v, target, body, headers);
}

// Every log file of the run, concatenated.
std::string all_logs(const std::string& dir) {
  std::string text;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".log") continue;
    text += file_text(e.path());
  }
  return text;
}

// Whether the platform's second API process answers /readyz within 30 s.
bool second_api_ready(platform& p) {
  return wait_until(
      [&] {
        try {
          http_client h(p.more_api_ports.at(0));
          return h.request(http::verb::get, "/readyz").status == 200;
        } catch (const std::exception&) {
          return false;  // not listening yet
        }
      },
      30s);
}

}  // namespace

TEST_CASE(
    "a key made through the API works, is listed without its secret, and dies everywhere "
    "at once when revoked") {
  scratch s;
  // A minute of caching: only the revocation NOTIFY can make the keys fail fast.
  platform p(s, {"processing"}, {{"JOBS_AUTH_CACHE_MS", "60000"}});
  p.add_api();
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  REQUIRE(second_api_ready(p));
  http_client other(p.more_api_ports.at(0));

  auto made = call(h, http::verb::post, "/v1/keys", admin, R"({"name":"ci","role":"submitter"})");
  REQUIRE_MESSAGE(made.status == 201, made.body);
  CHECK(made.headers["cache-control"] == "no-store");
  auto doc = made.json();
  std::string key(doc.at("key").as_string()), id(doc.at("id").as_string());
  CHECK(doc.at("role") == "submitter");
  CHECK(key.starts_with(std::string(doc.at("prefix").as_string())));

  // It works on both API processes (and is cached there now).
  CHECK(call(h, http::verb::post, "/v1/jobs", key, noop).status == 202);
  CHECK(call(other, http::verb::post, "/v1/jobs", key, noop).status == 202);
  // A submitter key can't manage keys.
  CHECK(call(h, http::verb::get, "/v1/keys", key).status == 403);

  auto list = call(h, http::verb::get, "/v1/keys", admin);
  REQUIRE(list.status == 200);
  CHECK(list.body.find(key) == std::string::npos);
  CHECK(list.json().at("keys").as_array().size() == 2);

  auto revoked = call(h, http::verb::delete_, "/v1/keys/" + id, admin);
  REQUIRE(revoked.status == 200);
  CHECK_FALSE(revoked.json().at("revoked_at").is_null());
  CHECK(call(h, http::verb::post, "/v1/jobs", key, noop).status == 401);
  // The other process heard the NOTIFY: far sooner than its 60 s cache.
  CHECK(wait_until(
      [&] { return call(other, http::verb::post, "/v1/jobs", key, noop).status == 401; }, 3s));
  CHECK(call(h, http::verb::delete_, "/v1/keys/" + id, create_key(s.pg_url, "other")).status ==
        404);
  CHECK(call(h, http::verb::delete_, "/v1/keys/999999", admin).status == 404);
  CHECK(call(h, http::verb::delete_, "/v1/keys/x'--", admin).status == 404);

  // The tenant's last usable admin key is not revoked (409, nothing
  // changed): revoking it would leave the tenant no key management.
  std::string admin_id;
  auto keys = call(h, http::verb::get, "/v1/keys", admin).json();
  for (const auto& k : keys.at("keys").as_array())
    if (k.at("role") == "admin") admin_id = std::string(k.at("id").as_string());
  REQUIRE(!admin_id.empty());
  auto last = call(h, http::verb::delete_, "/v1/keys/" + admin_id, admin);
  CHECK(last.status == 409);
  CHECK(last.json().at("code") == "last_admin_key");
  CHECK(call(h, http::verb::get, "/v1/keys", admin).status == 200);
  // With a second admin key, the first can go; then the second is the last.
  auto second = call(h, http::verb::post, "/v1/keys", admin, R"({"name":"ops","role":"admin"})");
  REQUIRE(second.status == 201);
  std::string second_key(second.json().at("key").as_string()),
      second_id(second.json().at("id").as_string());
  CHECK(call(h, http::verb::delete_, "/v1/keys/" + admin_id, second_key).status == 200);
  CHECK(call(h, http::verb::delete_, "/v1/keys/" + second_id, second_key).status == 409);
  CHECK(call(h, http::verb::get, "/v1/keys", second_key).status == 200);

  // No key of this run is in any log.
  p.more_apis.clear();
  auto logs = all_logs(p.log_dir);
  CHECK(logs.find(key) == std::string::npos);
  CHECK(logs.find(admin) == std::string::npos);
}

TEST_CASE("a key with expires_at stops working then, whatever the cache") {
  scratch s;
  platform p(s, {"processing"}, {{"JOBS_AUTH_CACHE_MS", "60000"}});
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto soon = std::chrono::system_clock::now() + 2s;
  auto made = call(h, http::verb::post, "/v1/keys", admin,
                   fmt::format(R"({{"expires_at":"{}"}})", format_rfc3339(soon)));
  REQUIRE_MESSAGE(made.status == 201, made.body);
  std::string key(made.json().at("key").as_string());
  CHECK(call(h, http::verb::post, "/v1/jobs", key, noop).status == 202);
  std::this_thread::sleep_until(soon + 200ms);
  CHECK(call(h, http::verb::post, "/v1/jobs", key, noop).status == 401);
}

TEST_CASE("a tenant sending ten times its rate gets 429s while another tenant's jobs complete") {
  scratch s;
  platform p(s, {"processing"},
             {{"JOBS_RATE_TENANT_PER_S", "20"}, {"JOBS_RATE_TENANT_BURST", "20"}});
  auto noisy = create_key(s.pg_url, "noisy");
  auto calm = create_key(s.pg_url, "calm");
  http_client hn(p.port), hc(p.port);
  int accepted = 0, limited = 0, calm_accepted = 0;
  std::string retry_after;
  auto start = std::chrono::steady_clock::now();
  // About 200 requests a second for a second from the noisy tenant, 10 from the calm one.
  for (int i = 0; i < 200; ++i) {
    auto r = call(hn, http::verb::post, "/v1/jobs", noisy, noop);
    if (r.status == 202) ++accepted;
    if (r.status == 429) {
      ++limited;
      retry_after = r.headers["retry-after"];
      CHECK(r.json().at("code") == "rate_limited");
    }
    if (i % 20 == 0 && call(hc, http::verb::post, "/v1/jobs", calm, noop).status == 202)
      ++calm_accepted;
    std::this_thread::sleep_until(start + (i + 1) * 5ms);
  }
  CHECK(accepted + limited == 200);
  CHECK(limited >= 100);
  CHECK(accepted >= 20);
  CHECK(retry_after == "1");
  CHECK(calm_accepted == 10);
  REQUIRE(wait_until(
      [&] {
        return count(
                   s.pg_url,
                   "SELECT count(*) FROM jobs WHERE tenant_id = 'calm' AND state = 'succeeded'") ==
               10;
      },
      30s));
}

TEST_CASE("responses say what is left of the key's rate: RateLimit-Policy and RateLimit") {
  scratch s;
  platform p(s, {},
             {{"JOBS_RATE_KEY_PER_S", "1"},
              {"JOBS_RATE_KEY_BURST", "3"},
              {"JOBS_RATE_TENANT_PER_S", "0"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  // A fresh bucket of 3: one request leaves 2, full again in a second.
  auto first = call(h, http::verb::post, "/v1/jobs", key, noop);
  REQUIRE(first.status == 202);
  CHECK(first.headers["ratelimit-policy"] == R"("key";q=3;w=3)");
  CHECK(first.headers["ratelimit"] == R"("key";r=2;t=1)");
  // Reads count too; the probes are not limited and say nothing.
  auto read = call(h, http::verb::get, "/v1/jobs?limit=1", key, "");
  CHECK(read.status == 200);
  CHECK(read.headers["ratelimit"].starts_with(R"("key";r=)"));
  CHECK(h.get("/healthz", "").headers.count("ratelimit") == 0);
  http_reply refused;
  for (int i = 0; i < 6 && refused.status != 429; ++i)
    refused = call(h, http::verb::post, "/v1/jobs", key, noop);
  REQUIRE(refused.status == 429);
  CHECK(refused.headers["ratelimit-policy"] == R"("key";q=3;w=3)");
  CHECK(refused.headers["ratelimit"].starts_with(R"("key";r=0;t=)"));
  CHECK(!refused.headers["retry-after"].empty());
  // With both limits on, both buckets are named.
  scratch s2;
  platform both(s2, {},
                {{"JOBS_RATE_KEY_PER_S", "10"},
                 {"JOBS_RATE_KEY_BURST", "20"},
                 {"JOBS_RATE_TENANT_PER_S", "100"},
                 {"JOBS_RATE_TENANT_BURST", "50"}});
  auto key2 = create_key(s2.pg_url, "acme");
  http_client h2(both.port);
  auto batch = h2.post_json("/v1/jobs/batch",
                            R"({"jobs":[{"queue":"processing","type":"noop","payload":{}},)"
                            R"({"queue":"processing","type":"noop","payload":{}}]})",
                            key2);
  REQUIRE(batch.status == 202);
  CHECK(batch.headers["ratelimit-policy"] == R"("key";q=20;w=2, "tenant";q=50;w=1)");
  CHECK(batch.headers["ratelimit"] == R"("key";r=18;t=1, "tenant";r=48;t=1)");
}

TEST_CASE("a key revoked while a request's body is on its way does not carry that request") {
  // The head passes its check (100 Continue), the key is revoked, then the
  // body comes: the request is judged with the key as it is now, on this
  // API process (its own revoke) and on another (the NOTIFY).
  scratch s;
  platform p(s, {}, {{"JOBS_AUTH_CACHE_MS", "60000"}});
  p.add_api();
  REQUIRE(second_api_ready(p));
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto made = call(h, http::verb::post, "/v1/keys", admin, R"({"name":"leaked","role":"admin"})");
  REQUIRE(made.status == 201);
  std::string leaked(made.json().at("key").as_string()), id(made.json().at("id").as_string());
  const std::string body = R"({"role":"admin"})";
  auto head = fmt::format(
      "POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
      "Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
      leaked, body.size());
  raw_conn here(p.port), there(p.more_api_ports.at(0));
  for (auto* c : {&here, &there}) {
    c->send(head);
    CHECK(c->read_all(5s).starts_with("HTTP/1.1 100 Continue"));
  }
  REQUIRE(call(h, http::verb::delete_, "/v1/keys/" + id, admin).status == 200);
  http_client other(p.more_api_ports.at(0));
  REQUIRE(wait_until(  // the NOTIFY has reached the other process
      [&] { return call(other, http::verb::get, "/v1/keys", leaked).status == 401; }, 5s));
  for (auto* c : {&here, &there}) {
    c->send(body);
    auto answer = c->read_all(10s);
    CHECK_MESSAGE(answer.starts_with("HTTP/1.1 401"), answer.substr(0, 200));
  }
  // No key was made with it.
  CHECK(call(h, http::verb::get, "/v1/keys", admin).json().at("keys").as_array().size() == 2);
}
