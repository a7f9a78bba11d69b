// ctest-labels: security
// A table of hostile requests against a running platform (API + workers):
// each gets its documented status and problem code, over raw sockets so that
// nothing on the client side tidies the request up. Afterwards the platform
// still runs a normal job to success.
#include "support/live.hpp"
#include "support/raw_conn.hpp"
#include "support/smtp_sink.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct answer {
  int status = 0;
  std::string code;
  std::string raw;
};

answer parse_answer(const std::string& raw) {
  answer a;
  a.raw = raw.substr(0, 400);
  if (raw.size() < 12 || !raw.starts_with("HTTP/1.")) return a;
  a.status = std::stoi(raw.substr(9, 3));
  auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return a;
  boost::system::error_code ec;
  auto doc = json::parse(raw.substr(end + 4), ec);
  if (!ec && doc.is_object())
    if (auto* c = doc.as_object().if_contains("code"); c && c->is_string())
      a.code = std::string(c->as_string());
  return a;
}

std::string request(const std::string& method, const std::string& target, const std::string& key,
                    const std::string& body = {},
                    const std::string& content_type = "application/json",
                    const std::string& extra = {}) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\n", method, target);
  if (!key.empty()) r += "Authorization: " + key + "\r\n";
  if (!content_type.empty() && !body.empty()) r += "Content-Type: " + content_type + "\r\n";
  r += extra;
  if (!body.empty() || method == "POST") r += fmt::format("Content-Length: {}\r\n", body.size());
  return r + "\r\n" + body;
}

answer exchange(int port, const std::string& bytes) {
  raw_conn c(port);
  c.send(bytes);
  return parse_answer(c.read_all(10s));
}

std::string noop_with(const std::string& extra) {
  return R"({"queue":"processing","type":"noop","payload":{})" + extra + "}";
}

std::string email(const json::object& fields) {
  json::object payload{{"from", "a@example.com"},
                       {"to", json::array{"b@example.com"}},
                       {"subject", "hi"},
                       {"text", "hello"}};
  for (const auto& [k, v] : fields) payload[k] = v;
  return json::serialize(json::object{{"queue", "email"}, {"type", "send"}, {"payload", payload}});
}

std::string job_id_of(const answer& a, const std::string& raw) {
  REQUIRE_MESSAGE(a.status == 202, raw);
  auto doc = json::parse(raw.substr(raw.find("\r\n\r\n") + 4));
  return std::string(doc.at("id").as_string());
}

}  // namespace

TEST_CASE("hostile requests get their documented status and code; normal traffic still flows") {
  scratch s;
  platform p(s, {"processing", "webhooks"},
             {{"JOBS_HTTP_HEADER_TIMEOUT_MS", "1000"},
              {"JOBS_HTTP_READ_TIMEOUT_MS", "1000"},
              {"JOBS_HTTP_IDLE_TIMEOUT_MS", "3000"},
              {"JOBS_HTTP_MAX_HEADERS", "50"},
              {"JOBS_HTTP_URL_LIMIT", "2048"},
              {"JOBS_HTTP_MAX_CONNECTIONS_PER_IP", "16"},
              {"JOBS_JSON_MAX_STRING", "4096"},
              {"JOBS_JSON_MAX_ARRAY", "100"},
              {"JOBS_WEBHOOK_TIMEOUT_MS", "3000"}});
  auto port = p.port;
  auto key_a = "Bearer " + create_key(s.pg_url, "tenant-a");
  auto key_b = "Bearer " + create_key(s.pg_url, "tenant-b");

  // A job of tenant B, and keys that are expired and revoked.
  auto raw_b = [&] {
    raw_conn c(port);
    c.send(request("POST", "/v1/jobs", key_b, noop_with(R"(,"run_at":"2200-01-01T00:00:00Z")")));
    return c.read_all(10s);
  }();
  auto b_job = job_id_of(parse_answer(raw_b), raw_b);
  auto expired = create_key(s.pg_url, "tenant-a");
  auto mark = [&](const std::string& key, const std::string& set) {
    return count(s.pg_url, "WITH u AS (UPDATE api_keys SET " + set + " WHERE key_hash = sha256('" +
                               key + "'::bytea) RETURNING 1) SELECT count(*) FROM u");
  };
  CHECK(mark(expired, "expires_at = now() - interval '1 minute'") == 1);
  auto revoked = create_key(s.pg_url, "tenant-a");
  CHECK(mark(revoked, "revoked_at = now()") == 1);

  std::string headers_60;
  for (int i = 0; i < 60; ++i) headers_60 += fmt::format("X-H{}: v\r\n", i);
  std::string many = "{\"jobs\":[";  // 200 elements where 100 are allowed
  for (int i = 0; i < 200; ++i) many += (i ? ",1" : "1");
  many += "]}";
  const std::string sql = "%27%20OR%201%3D1%3B%20DROP%20TABLE%20jobs%3B--";

  struct hostile {
    std::string name;
    std::string bytes;
    int status;
    std::string code;
  };
  std::vector<hostile> table{
      // A declared length past the limit is refused before the body is sent.
      {"oversized body",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
       413, "body_too_large"},
      {"oversized body, sent whole",
       request("POST", "/v1/jobs", key_a, std::string(1536 << 10, ' ')), 413, "body_too_large"},
      {"100,000 nested [", request("POST", "/v1/jobs", key_a, std::string(100000, '[')), 400,
       "json_too_deep"},
      {"invalid UTF-8", request("POST", "/v1/jobs", key_a, noop_with(",\"type\":\"\xff\xfe\"")),
       400, "invalid_utf8"},
      {"duplicate keys",
       request("POST", "/v1/jobs", key_a,
               R"({"queue":"processing","type":"noop","type":"hash","payload":{}})"),
       400, "json_duplicate_key"},
      {"integer past 64 bits",
       request("POST", "/v1/jobs", key_a,
               noop_with(R"(,"priority":123456789012345678901234567890)")),
       400, "json_number_out_of_range"},
      {"number past double", request("POST", "/v1/jobs", key_a, noop_with(R"(,"priority":1e400)")),
       400, "json_number_out_of_range"},
      {"integer out of the field's range",
       request("POST", "/v1/jobs", key_a, noop_with(R"(,"priority":2147483648)")), 400,
       "invalid_field"},
      {"string past the limit",
       request("POST", "/v1/jobs", key_a,
               noop_with(",\"idempotency_key\":\"" + std::string(5000, 'k') + "\"")),
       400, "json_string_too_long"},
      {"array past the limit", request("POST", "/v1/jobs/batch", key_a, many), 400,
       "json_array_too_long"},
      {"wrong content type", request("POST", "/v1/jobs", key_a, noop_with(""), "text/plain"), 415,
       "unsupported_media_type"},
      {"form content type",
       request("POST", "/v1/jobs", key_a, "queue=processing", "application/x-www-form-urlencoded"),
       415, "unsupported_media_type"},
      {"missing key", request("POST", "/v1/jobs", "", noop_with("")), 401, "unauthorized"},
      {"garbled key",
       request("POST", "/v1/jobs", "Bearer !!!'; DROP TABLE api_keys;--", noop_with("")), 401,
       "unauthorized"},
      {"wrong scheme", request("GET", "/v1/jobs", "Basic " + key_a.substr(7)), 401, "unauthorized"},
      {"two Authorization fields, the first valid",
       request("GET", "/v1/jobs", key_a, {}, {}, "Authorization: Bearer other\r\n"), 401,
       "unauthorized"},
      {"expired key", request("GET", "/v1/jobs", "Bearer " + expired), 401, "unauthorized"},
      {"revoked key", request("GET", "/v1/jobs", "Bearer " + revoked), 401, "unauthorized"},
      {"another tenant's job: GET", request("GET", "/v1/jobs/" + b_job, key_a), 404, "not_found"},
      {"another tenant's job: cancel", request("POST", "/v1/jobs/" + b_job + "/cancel", key_a), 404,
       "not_found"},
      {"another tenant's job: retry", request("POST", "/v1/jobs/" + b_job + "/retry", key_a), 404,
       "not_found"},
      {"SQL in queue filter", request("GET", "/v1/jobs?queue=" + sql, key_a), 400, "unknown_queue"},
      {"SQL in state filter", request("GET", "/v1/jobs?state=" + sql, key_a), 400, "invalid_field"},
      {"SQL in cursor", request("GET", "/v1/jobs?cursor=" + sql, key_a), 400, "invalid_field"},
      {"SQL in limit", request("GET", "/v1/jobs?limit=1" + sql, key_a), 400, "invalid_field"},
      {"SQL as a filter name", request("GET", "/v1/jobs?" + sql + "=1", key_a), 400,
       "unknown_field"},
      // Text PostgreSQL would refuse (a 503 as if it were down) is refused first.
      {"malformed UTF-8 in q", request("GET", "/v1/jobs?q=%FF%FE", key_a), 400, "invalid_field"},
      {"malformed UTF-8 in type", request("GET", "/v1/jobs?type=%FF", key_a), 400, "invalid_field"},
      {"overlong UTF-8 in q", request("GET", "/v1/jobs?q=%C0%AF", key_a), 400, "invalid_field"},
      {"a surrogate in q", request("GET", "/v1/jobs?q=%ED%A0%80", key_a), 400, "invalid_field"},
      {"malformed UTF-8 in a bulk cancel",
       request("POST", "/v1/admin/jobs/cancel?q=%FF&dry_run=true", key_a), 400, "invalid_field"},
      {"malformed UTF-8 in a bulk retry", request("POST", "/v1/admin/jobs/retry?q=%FF", key_a), 400,
       "invalid_field"},
      {"malformed UTF-8 as a job id", request("GET", "/v1/jobs/%FF", key_a), 400, "invalid_field"},
      {"SQL as a job id", request("GET", "/v1/jobs/" + sql, key_a), 404, "not_found"},
      {"SQL in an endpoint name", request("GET", "/v1/webhook-endpoints/" + sql, key_a), 404,
       "not_found"},
      {"path traversal", request("GET", "/v1/jobs/../../../etc/passwd", key_a), 404, "not_found"},
      {"encoded path traversal", request("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", key_a), 404,
       "not_found"},
      {"traversal to a route", request("GET", "/v1/jobs/x/../../keys", key_a), 404, "not_found"},
      {"a clean email (the control for the three below)",
       request("POST", "/v1/jobs", key_a, email({})), 202, ""},
      {"CRLF in the subject",
       request("POST", "/v1/jobs", key_a, email({{"subject", "hi\r\nBcc: x@evil.example"}})), 400,
       "payload_invalid"},
      {"CRLF in a recipient",
       request("POST", "/v1/jobs", key_a,
               email({{"to", json::array{"b@example.com\r\nRCPT TO:<x@evil.example>"}}})),
       400, "payload_invalid"},
      {"Bcc as a custom header",
       request("POST", "/v1/jobs", key_a,
               email({{"headers", json::object{{"Bcc", "x@evil.example"}}}})),
       400, "payload_invalid"},
      {"over-long URL", request("GET", "/v1/jobs?limit=1&" + std::string(3000, 'a'), key_a), 414,
       "url_too_long"},
      {"too many headers", request("GET", "/v1/jobs", key_a, {}, {}, headers_60), 431,
       "too_many_headers"},
      {"one huge header",
       request("GET", "/v1/jobs", key_a, {}, {}, "X-Big: " + std::string(20000, 'x') + "\r\n"), 431,
       "header_too_large"},
      {"garbage instead of HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400,
       "bad_request"},
      // Beast reads no body unless chunked is the last coding: the bytes
      // after the head would be a second request (smuggled past a proxy
      // that reads the body as the client meant it).
      {"a Transfer-Encoding not ending in chunked, a request smuggled after it",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n"
           "GET /v1/keys HTTP/1.1\r\nHost: localhost\r\n\r\n",
       400, "bad_request"},
      {"Transfer-Encoding: chunked, identity",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
           "0\r\n\r\n",
       400, "bad_request"},
      {"a coding before chunked",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       501, "unsupported_transfer_coding"},
      // A chunk's extensions are not counted against the body limit: the read
      // buffer bounds its size line (this grew the API by 300 MB a second).
      {"a chunk's size line without end",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
           std::string(400 << 10, 'a'),
       400, "bad_request"},
      // No key: refused from the head, its body never read (and never held).
      {"a chunked body without a key",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Transfer-Encoding: chunked\r\n\r\n1;" +
           std::string(400 << 10, 'a'),
       401, "unauthorized"},
      // A route that takes no body refuses one from the head, key or not:
      // none is read (200 such connections once held 200 MiB).
      {"a body declared to /healthz, never sent (else 408 a second later)",
       "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n", 400,
       "unexpected_body"},
      {"a body declared to the dashboard's files",
       "POST /admin/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n", 400,
       "unexpected_body"},
      {"a chunked body to /metrics",
       "GET /metrics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1;aaa", 400,
       "unexpected_body"},
      {"a body declared to a keyed route that takes none, with its key",
       "GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Length: 1048576\r\n\r\n",
       400, "unexpected_body"},
      // Trailer fields would join the head after it was checked: a second
      // Authorization (charged to no key's rate limit), fields past the limit.
      {"a chunked body, no trailer (the control for the one below)",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
           fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", noop_with("").size(), noop_with("")),
       202, ""},
      {"a chunked body's trailer with a second Authorization",
       "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
           fmt::format("{:x}\r\n{}\r\n0\r\nAuthorization: Bearer junk\r\n\r\n",
                       noop_with("").size(), noop_with("")),
       400, "bad_request"},
      {"a batch's length declared without a key, its body never sent (else 408 a second later)",
       "POST /v1/jobs/batch HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Content-Length: 16000000\r\n\r\n",
       401, "unauthorized"},
      {"an expectation other than 100-continue",
       request("POST", "/v1/jobs", key_a, noop_with(""), "application/json",
               "Expect: x-fast-lane\r\n"),
       417, "expectation_failed"},
  };
  for (const auto& h : table) {
    CAPTURE(h.name);
    auto a = exchange(port, h.bytes);
    CAPTURE(a.raw);
    CHECK(a.status == h.status);
    CHECK(a.code == h.code);
  }

  // The smuggled request is not answered: the connection closes after the 400.
  {
    raw_conn c(port);
    c.send("POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: identity\r\n\r\n"
           "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::string raw = c.read_all(3s);
    raw += c.read_all(1s);
    CAPTURE(raw);
    CHECK(raw.starts_with("HTTP/1.1 400"));
    CHECK(raw.find("HTTP/1.1 ", 1) == std::string::npos);
    CHECK(c.closed);
  }

  // A batch's declared length past its own, larger limit: the refusal names that limit.
  {
    raw_conn c(port);
    c.send("POST /v1/jobs/batch HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nContent-Length: 17000000\r\n\r\n");
    auto raw = c.read_all(10s);
    auto a = parse_answer(raw);
    CAPTURE(a.raw);
    CHECK(a.status == 413);
    CHECK(raw.find("the limit is 16777216 bytes") != std::string::npos);
  }

  // HEAD, then GET on the same connection: HEAD's answer has GET's
  // Content-Length and no body, so the GET's answer follows its headers.
  {
    raw_conn c(port);
    c.send(request("HEAD", "/healthz", "") + request("GET", "/healthz", ""));
    std::string raw;
    for (int i = 0; i < 25; ++i) {
      raw += c.read_all(200ms);
      auto second = raw.find("HTTP/1.1 ", 1);
      if (second != std::string::npos && raw.ends_with("}")) break;
    }
    CAPTURE(raw);
    auto head_end = raw.find("\r\n\r\n");
    REQUIRE(head_end != std::string::npos);
    CHECK(raw.starts_with("HTTP/1.1 200"));
    REQUIRE(raw.substr(head_end + 4).starts_with("HTTP/1.1 200"));
    auto get = raw.substr(head_end + 4);
    auto get_body = get.substr(get.find("\r\n\r\n") + 4);
    CHECK(raw.substr(0, head_end).find("Content-Length: " + std::to_string(get_body.size())) !=
          std::string::npos);
  }

  // Expect: 100-continue: "100 Continue" as soon as the head passed its
  // checks (curl waits about 1 s for it on bodies over 1 MiB), then the body
  // and the real answer on the same connection.
  {
    auto body = noop_with("");
    auto head =
        request("POST", "/v1/jobs", key_a, body, "application/json", "Expect: 100-continue\r\n");
    head.resize(head.size() - body.size());  // the head alone
    raw_conn c(port);
    auto start = std::chrono::steady_clock::now();
    c.send(head);
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos &&
           std::chrono::steady_clock::now() - start < 3s)
      got += c.read_all(100ms);
    auto waited = std::chrono::steady_clock::now() - start;
    CAPTURE(got);
    CHECK(got.starts_with("HTTP/1.1 100 Continue\r\n"));
    CHECK(waited < 800ms);
    c.send(body);
    auto a = parse_answer(c.read_all(10s));
    CAPTURE(a.raw);
    CHECK(a.status == 202);
  }
  // A head refused without its body gets the final answer, never a 100.
  {
    raw_conn c(port);
    c.send("POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
           "Content-Length: 2000000\r\n\r\n");
    auto raw = c.read_all(10s);
    CAPTURE(raw.substr(0, 200));
    CHECK(raw.starts_with("HTTP/1.1 413"));
  }
  // An expectation the server cannot meet: 417 at once, the body never asked
  // for (nor waited for: the read deadline here is 1 s), the connection closed.
  {
    raw_conn c(port);
    auto body = noop_with("");
    auto head = request("POST", "/v1/jobs", key_a, body, "application/json",
                        "Expect: 100-continue, x-fast-lane\r\n");
    head.resize(head.size() - body.size());
    auto start = std::chrono::steady_clock::now();
    c.send(head);
    auto raw = c.read_all(10s);
    auto a = parse_answer(raw);
    CAPTURE(a.raw);
    CHECK(a.status == 417);
    CHECK(a.code == "expectation_failed");
    CHECK(std::chrono::steady_clock::now() - start < 800ms);
    CHECK(raw.find("Connection: close") != std::string::npos);
  }
  // What the head alone decides (the route, the key, looked up) is answered
  // before a 100 too: the body is never sent, the answer comes well within
  // the read deadline (1 s here: a server waiting for the body would say
  // 408), and the connection closes, so no body can be read as a request.
  auto viewer = create_key(s.pg_url, "tenant-a");
  CHECK(mark(viewer, "role = 'viewer'") == 1);
  struct early {
    std::string what, method, target, key;
    int status;
    std::string code;
  };
  for (const auto& [what, method, target, key, status, code] : std::vector<early>{
           {"no key", "POST", "/v1/jobs", "", 401, "unauthorized"},
           {"no route", "POST", "/v1/nowhere", key_a, 404, "not_found"},
           {"a revoked key", "POST", "/v1/jobs", "Bearer " + revoked, 401, "unauthorized"},
           {"an expired key", "POST", "/v1/jobs/batch", "Bearer " + expired, 401, "unauthorized"},
           {"an unknown key", "POST", "/v1/jobs", "Bearer jk_nobody", 401, "unauthorized"},
           {"a viewer key", "POST", "/v1/jobs", "Bearer " + viewer, 403, "forbidden"},
           {"a method the route does not take", "PUT", "/v1/jobs", key_a, 405,
            "method_not_allowed"}}) {
    CAPTURE(what);
    raw_conn c(port);
    auto body = noop_with("");
    auto head = request(method, target, key, body, "application/json", "Expect: 100-continue\r\n");
    head.resize(head.size() - body.size());
    auto start = std::chrono::steady_clock::now();
    c.send(head);
    auto raw = c.read_all(10s);
    auto waited = std::chrono::steady_clock::now() - start;
    auto a = parse_answer(raw);
    CAPTURE(a.raw);
    CHECK(a.status == status);
    CHECK(a.code == code);
    CHECK(waited < 800ms);
    CHECK(raw.find("Connection: close") != std::string::npos);
    if (status == 405) CHECK(raw.find("Allow: POST, GET, HEAD") != std::string::npos);
    CHECK(c.read_all(3s).empty());
    CHECK(c.closed);
  }

  // Tenant A's list never shows tenant B's job.
  {
    raw_conn c(port);
    c.send(request("GET", "/v1/jobs?limit=500", key_a));
    auto raw = c.read_all(10s);
    CHECK(parse_answer(raw).status == 200);
    CHECK(raw.find(b_job) == std::string::npos);
  }

  // Slowloris: headers one line at a time, never finished: 408 by the deadline.
  {
    raw_conn c(port);
    auto start = std::chrono::steady_clock::now();
    c.send("POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\n");
    std::string raw;
    for (int i = 0; i < 40 && raw.empty() && !c.closed; ++i) {
      c.send(fmt::format("X-Slow-{}: 1\r\n", i));
      raw = c.read_all(200ms);
    }
    if (!c.closed) raw += c.read_all(3s);
    auto took = std::chrono::steady_clock::now() - start;
    auto a = parse_answer(raw);
    CAPTURE(a.raw);
    CHECK(a.status == 408);
    CHECK(a.code == "request_timeout");
    CHECK(c.closed);
    CHECK(took < 3s);
  }
  // A body that never finishes: 408 by the body deadline.
  {
    raw_conn c(port);
    auto start = std::chrono::steady_clock::now();
    c.send("POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key_a +
           "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"queue\":");
    auto a = parse_answer(c.read_all(5s));
    CAPTURE(a.raw);
    CHECK(a.status == 408);
    CHECK(a.code == "request_timeout");
    CHECK(std::chrono::steady_clock::now() - start < 3s);
  }
  // A connection that says nothing is closed by the idle deadline.
  {
    raw_conn c(port);
    auto start = std::chrono::steady_clock::now();
    auto raw = c.read_all(8s);
    CHECK(raw.empty());
    CHECK(c.closed);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  }
  // Too many connections from one address: past 16, 429 and closed.
  {
    std::vector<std::unique_ptr<raw_conn>> conns;
    for (int i = 0; i < 20; ++i) conns.push_back(std::make_unique<raw_conn>(port));
    int ok = 0, refused = 0;
    for (auto& c : conns) {
      c->send(request("GET", "/healthz", {}));
      auto a = parse_answer(c->read_all(5s));
      if (a.status == 200) ++ok;
      if (a.status == 429 && a.code == "too_many_connections") ++refused;
    }
    CHECK(ok >= 12);
    CHECK(ok <= 16);
    CHECK(refused >= 4);
    CHECK(ok + refused == 20);
  }

  // SSRF: a webhook aimed at loopback, the cloud metadata address or a
  // private network is accepted as a job but never delivered.
  http_client h(port);
  auto put = h.request(boost::beast::http::verb::put, "/v1/webhook-endpoints/default",
                       R"({"secrets":["whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="]})",
                       {{"authorization", key_a}, {"content-type", "application/json"}});
  REQUIRE_MESSAGE(put.status / 100 == 2, put.body);
  std::vector<std::string> ssrf_ids;
  for (const auto* url : {"http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data/",
                          "http://[::ffff:10.0.0.1]/", "http://2130706433/", "http://0x7f.1/"}) {
    auto r = h.post_json("/v1/jobs",
                         json::serialize(json::object{{"queue", "webhooks"},
                                                      {"type", "deliver"},
                                                      {"payload", {{"url", url}, {"body", 1}}},
                                                      {"max_attempts", 1}}),
                         key_a.substr(7));
    REQUIRE_MESSAGE(r.status == 202, url, r.body);
    ssrf_ids.emplace_back(r.json().at("id").as_string());
  }
  for (const auto& id : ssrf_ids) {
    auto job = wait_final(h, key_a.substr(7), id);
    CHECK(job.at("state") == "dead");
    CHECK(attempt_error(job, 0).starts_with("destination refused"));
  }

  // And the platform still serves normal traffic.
  auto ok = h.post_json("/v1/jobs", noop_with(""), key_a.substr(7));
  REQUIRE_MESSAGE(ok.status == 202, ok.body);
  auto job = wait_final(h, key_a.substr(7), std::string(ok.json().at("id").as_string()));
  CHECK(job.at("state") == "succeeded");
}

TEST_CASE("request bodies held at once stay within JOBS_HTTP_BODY_BUDGET, a tenant's in a part") {
  // A budget of 2 MiB, 1 MiB a tenant (a quarter, but at least the largest
  // body). Bodies declared and not sent hold their share: past a tenant's
  // part, or past the budget, another body is answered 503 unavailable at
  // once and not read; once a holder goes, bodies are taken again.
  scratch s;
  platform p(s, {"processing"},
             {{"JOBS_HTTP_BODY_LIMIT", "1048576"},
              {"JOBS_HTTP_BATCH_BODY_LIMIT", "1048576"},
              {"JOBS_HTTP_BODY_BUDGET", "2097152"},
              {"JOBS_HTTP_READ_TIMEOUT_MS", "30000"}});
  auto key_a = "Bearer " + create_key(s.pg_url, "tenant-a");
  auto key_b = "Bearer " + create_key(s.pg_url, "tenant-b");
  auto key_c = "Bearer " + create_key(s.pg_url, "tenant-c");
  // Not exchange(): std::exchange is found for a string made in the call.
  auto ask = [&](const std::string& bytes) { return exchange(p.port, bytes); };
  auto holding = [&](const std::string& key, std::size_t length) {
    auto c = std::make_unique<raw_conn>(p.port);
    c->send(fmt::format(
        "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: "
        "application/json\r\nContent-Length: {}\r\n\r\n{{",
        key, length));
    return c;
  };
  auto small = [&](const std::string& key) {
    return request("POST", "/v1/jobs", key, noop_with(""));
  };
  // Sends `bytes` until it is refused (or 10 s pass); the holders' heads are
  // checked (a key lookup) before their shares are taken, and a holder
  // checked while a probe held its few bytes was refused: it comes again,
  // alone.
  using holder = std::pair<std::unique_ptr<raw_conn>, std::pair<std::string, std::size_t>>;
  auto refused_while = [&](std::vector<holder>& holders, const std::string& bytes) {
    answer got;
    for (auto until = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < until;) {
      bool again = false;
      for (auto& [conn, what] : holders)
        if (!conn->read_all(20ms).empty()) {
          conn = holding(what.first, what.second);
          again = true;
        }
      if (again) {
        std::this_thread::sleep_for(300ms);
        continue;
      }
      raw_conn c(p.port);
      c.send(bytes);
      auto raw = c.read_all(5s);
      got = parse_answer(raw);
      if (got.status != 202) {
        CHECK(raw.find("Connection: close\r\n") != std::string::npos);
        CHECK(raw.find("Retry-After: 1\r\n") != std::string::npos);
        CHECK(raw.find("JOBS_HTTP_BODY_BUDGET") != std::string::npos);
        return got;
      }
      std::this_thread::sleep_for(50ms);
    }
    return got;
  };
  auto hold = [&](const std::string& key, std::size_t length) {
    return holder(holding(key, length), std::make_pair(key, length));
  };

  // Tenant A holds its part: its next body is refused, C's is not.
  std::vector<holder> held;
  held.push_back(hold(key_a, 1048576));
  auto refused = refused_while(held, small(key_a));
  CHECK_MESSAGE(refused.status == 503, refused.raw);
  CHECK(refused.code == "unavailable");
  auto other = ask(small(key_c));
  CHECK_MESSAGE(other.status == 202, other.raw);
  // A and B hold the whole budget: C's body is refused too, declared or
  // chunked, before its first chunk is read.
  held.push_back(hold(key_b, 1048576));
  refused = refused_while(held, small(key_c));
  CHECK_MESSAGE(refused.status == 503, refused.raw);
  auto chunked_head = [&](const std::string& key) {
    return "POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + key +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  };
  auto chunked = ask(chunked_head(key_c) +
                     fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", noop_with("").size(), noop_with("")));
  CHECK_MESSAGE(chunked.status == 503, chunked.raw);
  // Requests without a body do not need the budget.
  auto health = ask(request("GET", "/healthz", ""));
  CHECK_MESSAGE(health.status == 200, health.raw);
  // B leaves: its share comes back.
  held.pop_back();
  answer taken;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < until;) {
    taken = ask(small(key_c));
    if (taken.status == 202) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK_MESSAGE(taken.status == 202, taken.raw);
  // With C holding 512 KiB beside A's 1 MiB, 512 KiB are left: a chunked
  // body of 200 KiB from B fits only taken in steps (its limit, 1 MiB, all
  // at once would not).
  held.push_back(hold(key_c, 512 << 10));
  std::this_thread::sleep_for(1s);  // its head checked and its share taken
  CHECK(held.back().first->read_all(20ms).empty());
  std::string pad(200 << 10, 'x');
  auto body = noop_with(R"(,"pad":")" + pad + "\"");
  std::string chunks;
  for (std::size_t at = 0; at < body.size(); at += 16384) {
    auto piece = body.substr(at, 16384);
    chunks += fmt::format("{:x}\r\n{}\r\n", piece.size(), piece);
  }
  // noop takes no `pad`: any answer but 503 shows the body was read whole.
  auto big = ask(chunked_head(key_b) + chunks + "0\r\n\r\n");
  CHECK_MESSAGE((big.status != 503 && big.status != 0), big.raw);
}
