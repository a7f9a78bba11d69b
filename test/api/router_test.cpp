// Unit tests of the HTTP API without sockets (api/router.hpp): the router is
// driven on an io_context against an in-memory api_backend.
#include "api/router.hpp"
#include "api/api_metrics.hpp"
#include "queues/amqp.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/except>

#include <exception>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = jobs::http;
namespace json = boost::json;
using jobs::http_request;
using jobs::http_response;

const jobs::schema_registry& registry() {
  static const jobs::schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  return r;
}

constexpr const char* id_a = "01890a5d-ac96-774b-bcce-b302099a8057";
constexpr const char* id_b = "01890a5d-ac96-774b-bcce-b302099a8058";

// The platform in memory. Coroutines here never co_await, so they hold no
// temporaries across a suspension (GCC 12, see api/backend.hpp).
class fake_backend final : public jobs::api_backend {
 public:
  std::map<std::string, jobs::principal> keys;                        // api key -> principal
  std::vector<jobs::new_job> submitted;                               // accepted submissions
  std::map<std::pair<std::string, std::string>, std::string> stored;  // (tenant, id) -> JSON
  std::vector<std::pair<std::string, jobs::job_filter>> list_calls;   // (tenant, filter)
  std::string list_body = R"({"jobs":[],"next_cursor":null})";
  std::optional<jobs::problem> submit_problem;      // submit refuses with this problem
  std::optional<jobs::replayed_job> submit_replay;  // submit answers with this job
  std::map<int, jobs::problem> refuse_call;         // submit call number (from 1) -> its problem
  bool outage = false;                              // every call throws
  bool submit_throws = false;                       // only submit throws
  bool submit_broker_throws = false;                // only submit throws, as the broker's client
  bool cancel_throws = false;                       // only cancel_job throws
  jobs::readiness state{true, "accepting"};
  int authenticate_calls = 0;
  int submit_calls = 0;
  int find_calls = 0;
  std::vector<std::pair<std::string, std::string>> cancel_calls;  // (tenant, id)

  asio::awaitable<std::optional<jobs::principal>> authenticate(const std::string& key) override {
    ++authenticate_calls;
    if (outage) throw pqxx::broken_connection("PostgreSQL is unreachable");
    auto it = keys.find(key);
    if (it == keys.end()) co_return std::nullopt;
    co_return it->second;
  }

  asio::awaitable<jobs::submit_result> submit(const jobs::new_job& job) override {
    ++submit_calls;
    if (outage || submit_throws) throw std::runtime_error("broker is unreachable");
    if (submit_broker_throws) throw jobs::amqp_error("connection refused");
    if (submit_problem) co_return *submit_problem;
    if (auto it = refuse_call.find(submit_calls); it != refuse_call.end()) co_return it->second;
    submitted.push_back(job);
    if (submit_replay) co_return *submit_replay;
    co_return std::nullopt;
  }

  asio::awaitable<std::optional<std::string>> find_job(const jobs::tenant_id& t,
                                                       const jobs::job_id& id) override {
    ++find_calls;
    if (outage) throw pqxx::broken_connection("PostgreSQL is unreachable");
    auto it = stored.find({t.value, id.value});
    if (it == stored.end()) co_return std::nullopt;
    co_return it->second;
  }

  asio::awaitable<std::string> list_jobs(const jobs::tenant_id& t,
                                         const jobs::job_filter& f) override {
    if (outage) throw pqxx::broken_connection("PostgreSQL is unreachable");
    list_calls.emplace_back(t.value, f);
    co_return list_body;
  }

  // Like the store: a dead or failed job is rescheduled, anything else is refused.
  asio::awaitable<jobs::retry_reply> retry_job(const jobs::tenant_id& t,
                                               const jobs::job_id& id) override {
    if (outage) throw pqxx::broken_connection("PostgreSQL is unreachable");
    jobs::retry_reply r;
    auto it = stored.find({t.value, id.value});
    if (it == stored.end()) co_return r;
    auto job = json::parse(it->second).as_object();
    r.outcome.state = *jobs::parse_job_state(job.at("state").as_string());
    if (job.at("state") == "dead" || job.at("state") == "failed") {
      job["state"] = "scheduled";
      it->second = json::serialize(job);
      r.outcome.result = jobs::retry_result::retried;
    } else {
      r.outcome.result = jobs::retry_result::not_retryable;
    }
    r.job = it->second;
    co_return r;
  }

  // Like the store: the stored job's "state" decides, and a cancel rewrites it.
  asio::awaitable<jobs::cancel_reply> cancel_job(const jobs::tenant_id& t,
                                                 const jobs::job_id& id) override {
    cancel_calls.emplace_back(t.value, id.value);
    if (outage || cancel_throws) throw pqxx::broken_connection("PostgreSQL is unreachable");
    jobs::cancel_reply r;
    auto it = stored.find({t.value, id.value});
    if (it == stored.end()) co_return r;
    auto job = json::parse(it->second).as_object();
    auto state = jobs::parse_job_state(job.at("state").as_string());
    REQUIRE(state);
    r.outcome.state = *state;
    if (*state == jobs::job_state::running) {
      r.outcome.result = jobs::cancel_result::requested;
    } else if (jobs::is_final(*state)) {
      r.outcome.result = jobs::cancel_result::not_cancellable;
    } else {
      r.outcome.result = jobs::cancel_result::cancelled;
      job["state"] = "cancelled";
      it->second = json::serialize(job);
    }
    r.job = it->second;
    co_return r;
  }

  asio::awaitable<jobs::readiness> ready() override {
    if (outage) throw pqxx::broken_connection("PostgreSQL is unreachable");
    co_return state;
  }

  // Keys: (tenant, request) recorded; ids are "1", "2", ... per creation.
  std::vector<std::pair<std::string, jobs::key_request>> created_keys;
  std::vector<std::pair<std::string, std::string>> revoked;  // (tenant, id)

  asio::awaitable<std::string> create_key(const jobs::tenant_id& t,
                                          const jobs::key_request& k) override {
    created_keys.emplace_back(t.value, k);
    co_return R"({"id":")" + std::to_string(created_keys.size()) + R"(","key":"jk_new","role":")" +
        k.role + R"("})";
  }
  asio::awaitable<std::string> list_keys(const jobs::tenant_id& t) override {
    co_return R"({"keys":[],"tenant":")" + t.value + R"("})";
  }
  asio::awaitable<std::optional<std::string>> revoke_key(const jobs::tenant_id& t,
                                                         const std::string& id) override {
    revoked.emplace_back(t.value, id);
    if (id != "1") co_return std::nullopt;
    co_return R"({"id":"1","revoked_at":"2026-11-29T00:00:00Z"})";
  }
};

struct fixture {
  fake_backend backend;
  jobs::router router;

  explicit fixture(jobs::router_options options = {})
      : router(backend, registry(), std::move(options)) {
    backend.keys["key-a"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "admin"};
    backend.keys["key-b"] = jobs::principal{jobs::tenant_id{"tenant-b"}, "admin"};
  }

  // Runs router.handle(req) to completion.
  http_response run(const http_request& req) {
    asio::io_context ioc;
    std::optional<http_response> out;
    std::exception_ptr error;
    asio::co_spawn(ioc, router.handle(req), [&](std::exception_ptr e, http_response res) {
      error = e;
      out = std::move(res);
    });
    ioc.run();
    if (error) std::rethrow_exception(error);
    REQUIRE(out.has_value());
    // Every response carries a Content-Length matching its body (HEAD's: GET's body).
    if (req.method() != http::verb::head)
      CHECK(out->at(http::field::content_length) == std::to_string(out->body().size()));
    return std::move(*out);
  }

  http_response send(http::verb method, const std::string& target,
                     const std::string& auth = "Bearer key-a", const std::string& body = {},
                     const std::string& content_type = "application/json") {
    http_request req{method, target, 11};
    if (!auth.empty()) req.set(http::field::authorization, auth);
    if (method == http::verb::post || !body.empty()) {
      if (!content_type.empty()) req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
    }
    return run(req);
  }

  http_response get(const std::string& target, const std::string& auth = "Bearer key-a") {
    return send(http::verb::get, target, auth);
  }

  http_response post_job(const std::string& body,
                         const std::string& content_type = "application/json",
                         const std::string& auth = "Bearer key-a") {
    return send(http::verb::post, "/v1/jobs", auth, body, content_type);
  }
};

json::object parse_object(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  INFO("body: " << body);
  REQUIRE_FALSE(ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

// Checks the RFC 9457 shape of a problem response and returns its body.
json::object check_problem(const http_response& res, int status, const std::string& code) {
  INFO("body: " << res.body());
  CHECK(res.result_int() == static_cast<unsigned>(status));
  CHECK(res[http::field::content_type] == "application/problem+json");
  auto o = parse_object(res.body());
  REQUIRE(o.contains("type"));
  REQUIRE(o.at("type").is_string());
  CHECK_FALSE(o.at("type").as_string().empty());
  REQUIRE(o.contains("title"));
  REQUIRE(o.at("title").is_string());
  CHECK_FALSE(o.at("title").as_string().empty());
  REQUIRE(o.contains("status"));
  CHECK(o.at("status") == status);
  REQUIRE(o.contains("code"));
  CHECK(o.at("code") == code.c_str());
  return o;
}

void check_json(const http_response& res, unsigned status) {
  INFO("body: " << res.body());
  CHECK(res.result_int() == status);
  CHECK(res[http::field::content_type] == "application/json");
}

const std::string noop_job = R"({"queue":"processing","type":"noop","payload":{}})";

http_response post_batch(fixture& f, const std::string& body,
                         const std::string& auth = "Bearer key-a") {
  return f.send(http::verb::post, "/v1/jobs/batch", auth, body);
}

}  // namespace

TEST_CASE("GET /healthz is 200 and needs neither a key nor the backend") {
  fixture f;
  f.backend.outage = true;
  auto res = f.get("/healthz", "");
  check_json(res, 200);
  CHECK(parse_object(res.body()).at("status") == "ok");
  CHECK(f.backend.authenticate_calls == 0);
}

TEST_CASE("GET /readyz is 200 when the database and the broker are reachable") {
  fixture f;
  auto res = f.get("/readyz", "");
  check_json(res, 200);
  CHECK(res.body() ==
        R"({"status":"ready","database":true,"broker":true,"broker_state":"accepting"})");
  CHECK(res.find(http::field::retry_after) == res.end());
}

TEST_CASE(
    "GET /readyz is 503 with Retry-After, naming the broker's state, when a server is not ready") {
  struct row {
    bool database;
    std::string broker_state;
    std::string body;
  };
  for (
      const auto& r : {
          row{false, "accepting",
              R"({"status":"not ready","database":false,"broker":true,"broker_state":"accepting"})"},
          row{true, "unreachable",
              R"({"status":"not ready","database":true,"broker":false,"broker_state":"unreachable"})"},
          row{true, "blocked",
              R"({"status":"not ready","database":true,"broker":false,"broker_state":"blocked"})"},
          row{false, "stalled",
              R"({"status":"not ready","database":false,"broker":false,"broker_state":"stalled"})"},
      }) {
    CAPTURE(r.database);
    CAPTURE(r.broker_state);
    fixture f;
    f.backend.state = jobs::readiness{r.database, r.broker_state};
    auto res = f.get("/readyz", "");
    CHECK(res.result_int() == 503);
    CHECK(res.body() == r.body);
    CHECK_FALSE(res[http::field::retry_after].empty());
  }
}

TEST_CASE("GET /readyz is 503 unavailable when the readiness check throws") {
  fixture f;
  f.backend.outage = true;
  auto res = f.get("/readyz", "");
  check_problem(res, 503, "unavailable");
  CHECK_FALSE(res[http::field::retry_after].empty());
}

TEST_CASE("unknown routes are 404 problems") {
  fixture f;
  for (std::string target : {"/", "/nope", "/v2/jobs", "/healthzx", "/v1/nope", "/v1/jobs/",
                             "/v1/jobs/01890a5d-ac96-774b-bcce-b302099a8057/extra"}) {
    CAPTURE(target);
    check_problem(f.get(target), 404, "not_found");
  }
}

TEST_CASE("a /v1 route without Authorization is 401 with WWW-Authenticate") {
  fixture f;
  for (auto method : {http::verb::get, http::verb::post}) {
    auto res = f.send(method, "/v1/jobs", "", noop_job);
    check_problem(res, 401, "unauthorized");
    CHECK(res[http::field::www_authenticate].find("Bearer") != std::string_view::npos);
  }
  CHECK(f.backend.submit_calls == 0);
  CHECK(f.backend.list_calls.empty());
}

TEST_CASE("a wrong key or another scheme is 401") {
  fixture f;
  for (std::string auth : {"Bearer nope", "Bearer key-a-but-longer", "Bearer KEY-A", "Bearer",
                           "Bearer ", "Basic a2V5LWE6", "Token key-a", "key-a", "Bearerkey-a"}) {
    CAPTURE(auth);
    auto res = f.get("/v1/jobs", auth);
    check_problem(res, 401, "unauthorized");
    CHECK(res[http::field::www_authenticate].find("Bearer") != std::string_view::npos);
  }
  CHECK(f.backend.list_calls.empty());
  auto res = f.get("/v1/jobs/01890a5d-ac96-774b-bcce-b302099a8057", "Bearer nope");
  check_problem(res, 401, "unauthorized");
  CHECK(f.backend.find_calls == 0);
}

TEST_CASE("the Bearer scheme is case-insensitive") {
  fixture f;
  for (std::string auth : {"bearer key-a", "BEARER key-a", "bEaReR key-a"}) {
    CAPTURE(auth);
    check_json(f.get("/v1/jobs", auth), 200);
  }
  REQUIRE(f.backend.list_calls.size() == 3);
  for (const auto& [tenant, filter] : f.backend.list_calls) CHECK(tenant == "tenant-a");
}

TEST_CASE("POST /v1/jobs is 202 with Location and {id, state, links}") {
  fixture f;
  auto res =
      f.post_job(R"({"queue":"processing","type":"hash","payload":{"input":"hi"},"priority":3})");
  check_json(res, 202);
  auto o = parse_object(res.body());
  REQUIRE(o.at("id").is_string());
  std::string id(o.at("id").as_string());
  CHECK(jobs::is_uuid(id));
  CHECK(o.at("state") == "queued");
  CHECK(o.at("links").at("self") == ("/v1/jobs/" + id).c_str());
  CHECK(res[http::field::location] == "/v1/jobs/" + id);

  REQUIRE(f.backend.submitted.size() == 1);
  const auto& job = f.backend.submitted[0];
  CHECK(job.id.value == id);
  CHECK(job.tenant.value == "tenant-a");
  CHECK(job.queue == "processing");
  CHECK(job.type == "hash");
  CHECK(json::parse(job.payload_json) == json::parse(R"({"input":"hi"})"));
  CHECK(job.priority == 3);
  CHECK(job.state == jobs::job_state::queued);
}

TEST_CASE("POST /v1/jobs gives each job a new id and the caller's tenant") {
  fixture f;
  check_json(f.post_job(noop_job), 202);
  check_json(f.post_job(noop_job, "application/json", "Bearer key-b"), 202);
  REQUIRE(f.backend.submitted.size() == 2);
  CHECK(f.backend.submitted[0].tenant.value == "tenant-a");
  CHECK(f.backend.submitted[1].tenant.value == "tenant-b");
  CHECK(f.backend.submitted[0].id != f.backend.submitted[1].id);
  CHECK(jobs::is_uuid(f.backend.submitted[1].id.value));
}

TEST_CASE("POST /v1/jobs with a future run_at answers state scheduled") {
  fixture f;
  auto res = f.post_job(
      R"({"queue":"processing","type":"noop","payload":{},"run_at":"2099-01-01T00:00:00Z"})");
  check_json(res, 202);
  CHECK(parse_object(res.body()).at("state") == "scheduled");
  REQUIRE(f.backend.submitted.size() == 1);
  CHECK(f.backend.submitted[0].state == jobs::job_state::scheduled);
  CHECK(f.backend.submitted[0].run_at == "2099-01-01T00:00:00.000Z");
}

TEST_CASE("POST /v1/jobs without a JSON content type is 415") {
  fixture f;
  for (std::string type :
       {"", "text/plain", "application/jsonp", "application/x-www-form-urlencoded",
        "application/json-patch+json", "json"}) {
    CAPTURE(type);
    check_problem(f.post_job(noop_job, type), 415, "unsupported_media_type");
  }
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs with two Content-Type fields is 415, in either order") {
  for (auto types :
       {std::pair{"application/json", "text/plain"}, std::pair{"text/plain", "application/json"},
        std::pair{"application/json", "application/json"}}) {
    CAPTURE(types.first);
    CAPTURE(types.second);
    fixture f;
    http_request req{http::verb::post, "/v1/jobs", 11};
    req.set(http::field::authorization, "Bearer key-a");
    req.insert(http::field::content_type, types.first);
    req.insert(http::field::content_type, types.second);
    req.body() = noop_job;
    req.prepare_payload();
    auto o = check_problem(f.run(req), 415, "unsupported_media_type");
    CHECK(o.at("detail") == "send one Content-Type: application/json, not several");
    CHECK(f.backend.submit_calls == 0);
  }
}

TEST_CASE("POST /v1/jobs accepts JSON media types with parameters and any case") {
  fixture f;
  for (std::string type :
       {"application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"}) {
    CAPTURE(type);
    check_json(f.post_job(noop_job, type), 202);
  }
  CHECK(f.backend.submitted.size() == 3);
}

TEST_CASE("POST /v1/jobs passes a body problem through with its pointer") {
  fixture f;
  auto o =
      check_problem(f.post_job(R"({"queue":"processing","type":"noop","payload":{"sleep_ms":-1}})"),
                    400, "payload_invalid");
  CHECK(o.at("pointer") == "/payload/sleep_ms");

  o = check_problem(f.post_job(R"({"queue":"processing","type":"noop","payload":{},"priorty":1})"),
                    400, "unknown_field");
  CHECK(o.at("pointer") == "/priorty");

  o = check_problem(f.post_job(R"({"queue":"processing","type":"nope","payload":{}})"), 400,
                    "unknown_job_type");
  CHECK(o.at("pointer") == "/type");

  check_problem(f.post_job("{"), 400, "invalid_json");
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs applies the router's JSON depth limit") {
  jobs::router_options options;
  options.limits.max_depth = 8;
  fixture f(options);
  // 9 levels: the body, the payload, then 7 arrays.
  check_problem(
      f.post_job(R"({"queue":"processing","type":"noop","payload":{"echo":[[[[[[[]]]]]]]}})"), 400,
      "json_too_deep");
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs answers the backend's problem when it refuses the job") {
  SUBCASE("503") {
    fixture f;
    f.backend.submit_problem = jobs::make_problem(503, "unavailable", "the broker did not confirm");
    auto res = f.post_job(noop_job);
    check_problem(res, 503, "unavailable");
    CHECK_FALSE(res[http::field::retry_after].empty());
    CHECK(res.find(http::field::location) == res.end());
  }
  SUBCASE("429") {
    fixture f;
    f.backend.submit_problem = jobs::make_problem(429, "too_many_requests", "slow down");
    auto o = check_problem(f.post_job(noop_job), 429, "too_many_requests");
    CHECK(o.at("detail") == "slow down");
  }
}

TEST_CASE("POST /v1/jobs is 503 unavailable when the backend throws") {
  fixture f;
  f.backend.submit_throws = true;
  auto res = f.post_job(noop_job);
  auto o = check_problem(res, 503, "unavailable");
  CHECK_FALSE(res[http::field::retry_after].empty());
  // The reason stays in the log, not in the answer.
  CHECK(res.body().find("broker is unreachable") == std::string::npos);
  CHECK(o.at("detail") == "a backing service is unavailable; retry later");
  CHECK(f.backend.submit_calls == 1);
}

TEST_CASE("POST /v1/jobs is 503 naming the message broker when its client throws") {
  fixture f;
  f.backend.submit_broker_throws = true;
  auto res = f.post_job(noop_job);
  auto o = check_problem(res, 503, "unavailable");
  CHECK_FALSE(res[http::field::retry_after].empty());
  CHECK(res.body().find("connection refused") == std::string::npos);
  CHECK(o.at("detail") == "the message broker is unavailable; retry later");
}

TEST_CASE("a /v1 call is 503 unavailable when authentication throws") {
  fixture f;
  f.backend.outage = true;
  auto res = f.get(std::string("/v1/jobs/") + id_a);
  auto o = check_problem(res, 503, "unavailable");
  CHECK_FALSE(res[http::field::retry_after].empty());
  // Which server failed, without its words.
  CHECK(o.at("detail") == "the database is unavailable; retry later");
}

TEST_CASE("GET /v1/jobs/{id} returns the caller's own job") {
  fixture f;
  const std::string job = R"({"id":"01890a5d-ac96-774b-bcce-b302099a8057","state":"queued"})";
  f.backend.stored[{"tenant-a", id_a}] = job;
  auto res = f.get(std::string("/v1/jobs/") + id_a);
  check_json(res, 200);
  CHECK(res.body() == job);
}

TEST_CASE("GET /v1/jobs/{id} of another tenant's job is 404") {
  fixture f;
  f.backend.stored[{"tenant-b", id_b}] = R"({"id":"01890a5d-ac96-774b-bcce-b302099a8058"})";
  check_problem(f.get(std::string("/v1/jobs/") + id_b), 404, "not_found");
  // The owner sees it.
  check_json(f.get(std::string("/v1/jobs/") + id_b, "Bearer key-b"), 200);
}

TEST_CASE("GET /v1/jobs/{id} with an id that is not a UUID is 404 without a lookup") {
  fixture f;
  for (std::string id : {"nope", "42", "01890a5d-ac96-774b-bcce-b302099a805",
                         "01890a5d-ac96-774b-bcce-b302099a8057x", "%27%20OR%201%3D1",
                         // An encoded "/" stays in the id: not the events route.
                         "01890a5d-ac96-774b-bcce-b302099a8057%2Fevents",
                         "01890a5d-ac96-774b-bcce-b302099a8057%2fevents"}) {
    CAPTURE(id);
    check_problem(f.get(std::string("/v1/jobs/") + id), 404, "not_found");
  }
  CHECK(f.backend.find_calls == 0);
}

TEST_CASE("a method a route does not take is 405 with Allow") {
  fixture f;
  SUBCASE("DELETE /v1/jobs") {
    auto res = f.send(http::verb::delete_, "/v1/jobs");
    check_problem(res, 405, "method_not_allowed");
    auto allow = std::string(res[http::field::allow]);
    CHECK(allow == "POST, GET, HEAD");
  }
  SUBCASE("PUT /healthz") {
    auto res = f.send(http::verb::put, "/healthz", "", "{}");
    check_problem(res, 405, "method_not_allowed");
    CHECK(res[http::field::allow] == "GET, HEAD");
  }
  SUBCASE("POST /readyz") {
    auto res = f.send(http::verb::post, "/readyz", "", "{}");
    check_problem(res, 405, "method_not_allowed");
    CHECK(res[http::field::allow] == "GET, HEAD");
  }
  SUBCASE("DELETE /v1/jobs/{id}") {
    auto res = f.send(http::verb::delete_, std::string("/v1/jobs/") + id_a);
    check_problem(res, 405, "method_not_allowed");
    CHECK(res[http::field::allow] == "GET, HEAD");
  }
  SUBCASE("GET /v1/jobs/batch: the batch route's, not a job named batch") {
    auto res = f.send(http::verb::get, "/v1/jobs/batch");
    check_problem(res, 405, "method_not_allowed");
    CHECK(res[http::field::allow] == "POST");
    CHECK(f.backend.find_calls == 0);
  }
  CHECK(f.backend.submit_calls == 0);
  CHECK(f.backend.list_calls.empty());
}

TEST_CASE("HEAD answers as GET would, with GET's Content-Length and no body") {
  fixture f;
  auto get = f.get("/healthz", "");
  auto head = f.send(http::verb::head, "/healthz", "");
  CHECK(head.result_int() == 200);
  CHECK(head.body().empty());
  CHECK(head[http::field::content_type] == "application/json");
  CHECK(head[http::field::content_length] == std::to_string(get.body().size()));
  // A route behind a key runs as its GET does.
  head = f.send(http::verb::head, "/v1/jobs?state=queued");
  CHECK(head.result_int() == 200);
  CHECK(head.body().empty());
  REQUIRE(f.backend.list_calls.size() == 1);
  CHECK(f.backend.list_calls[0].second.state == "queued");
  // Refusals too: the status and headers, no body.
  head = f.send(http::verb::head, "/v1/jobs", "");
  CHECK(head.result_int() == 401);
  CHECK(head.body().empty());
  CHECK(head[http::field::content_type] == "application/problem+json");
  head = f.send(http::verb::head, "/nowhere", "");
  CHECK(head.result_int() == 404);
  CHECK(head.body().empty());
  head = f.send(http::verb::head, "/v1/keys/1");
  CHECK(head.result_int() == 405);
  CHECK(head[http::field::allow] == "DELETE");
  CHECK(head.body().empty());
}

TEST_CASE("a 405 is counted against the route of its path; an unknown path as unmatched") {
  jobs::metrics::registry reg;
  jobs::api_metrics m(reg);
  jobs::router_options o;
  o.metrics = &m;
  fixture f(o);
  f.send(http::verb::delete_, "/v1/jobs");
  f.send(http::verb::get, "/v1/admin/jobs/cancel");
  f.get("/nowhere");
  auto count = [&](const char* method, const char* route, const char* status) {
    return m.http.with({method, route, status}).count();
  };
  CHECK(count("DELETE", "/v1/jobs", "405") == 1);
  CHECK(count("GET", "/v1/admin/jobs/{action}", "405") == 1);
  CHECK(count("GET", "unmatched", "404") == 1);
}

TEST_CASE("GET /v1/jobs refuses a bad query parameter and names it") {
  struct row {
    const char* query;
    const char* parameter;
    const char* code;
  };
  const row rows[] = {
      {"limit=0", "limit", "invalid_field"},
      {"limit=501", "limit", "invalid_field"},
      {"limit=abc", "limit", "invalid_field"},
      {"limit=", "limit", "invalid_field"},
      {"limit=-1", "limit", "invalid_field"},
      {"limit=1.5", "limit", "invalid_field"},
      {"limit=10x", "limit", "invalid_field"},
      {"limit=99999999999", "limit", "invalid_field"},
      {"state=done", "state", "invalid_field"},
      {"state=", "state", "invalid_field"},
      {"state=QUEUED", "state", "invalid_field"},
      {"queue=reports", "queue", "unknown_queue"},
      {"queue=", "queue", "unknown_queue"},
      {"cursor=abc", "cursor", "invalid_field"},
      {"cursor=01890a5d-ac96-774b-bcce-b302099a805", "cursor", "invalid_field"},
      {"sort=asc", "sort", "unknown_field"},
      {"queue=email&page=2", "page", "unknown_field"},
      {"state=queued&state=succeeded", "state", "invalid_field"},
      {"limit=5&queue=email&limit=6", "limit", "invalid_field"},
      {"q=%00", "q", "invalid_field"},
      {"q=", "q", "invalid_field"},  // it would match every job
      {"type=noop%00x", "type", "invalid_field"},
      {"created_after=yesterday", "created_after", "invalid_field"},
      {"created_after=9999-12-31T00:00:00Z", "created_after", "invalid_field"},
      {"created_before=1969-12-31T23:59:59Z", "created_before", "invalid_field"},
  };
  for (const auto& r : rows) {
    std::string query = r.query;
    CAPTURE(query);
    fixture f;
    auto o = check_problem(f.get(std::string("/v1/jobs?") + r.query), 400, r.code);
    REQUIRE(o.contains("parameter"));
    CHECK(o.at("parameter") == r.parameter);
    CHECK_FALSE(o.contains("pointer"));
    CHECK(f.backend.list_calls.empty());
    if (std::string(r.parameter).starts_with("created_"))
      CHECK(std::string(o.at("detail").as_string())
                .ends_with("must be an RFC 3339 date-time between 1970 and 2262, e.g. "
                           "2026-11-22T10:00:00Z (in a URL, an offset's + as %2B)"));
  }
}

TEST_CASE("time filters reach the database as their instant, whatever the text's length") {
  // PostgreSQL refuses a timestamp text longer than its buffer (an error
  // that would answer 503 as if it were down): the store gets the instant.
  fixture f;
  check_json(f.get("/v1/jobs?created_after=2026-11-22T10:00:00." + std::string(150, '0') +
                   "1234Z&created_before=2026-11-22T12:30:00.1234567%2B02:00"),
             200);
  REQUIRE(f.backend.list_calls.size() == 1);
  CHECK(f.backend.list_calls[0].second.created_after == "2026-11-22T10:00:00.000000Z");
  CHECK(f.backend.list_calls[0].second.created_before == "2026-11-22T10:30:00.123456Z");
}

TEST_CASE("a query parameter or path segment that is not valid UTF-8 is 400 invalid_field") {
  // PostgreSQL refuses such text, which would answer 503 as if it were down.
  struct row {
    http::verb method;
    const char* target;
    const char* parameter;  // empty: a path segment, named in the detail
  };
  const row rows[] = {
      {http::verb::get, "/v1/jobs?q=%FF%FE", "q"},
      {http::verb::get, "/v1/jobs?type=%FF", "type"},
      {http::verb::get, "/v1/jobs?q=%C0%AF", "q"},        // overlong "/"
      {http::verb::get, "/v1/jobs?q=%ED%A0%80", "q"},     // a surrogate
      {http::verb::get, "/v1/jobs?q=%F4%90%80%80", "q"},  // past U+10FFFF
      {http::verb::get, "/v1/jobs?q=ok%E2%82", "q"},      // cut short
      {http::verb::get, "/v1/jobs?limit=5&state=%FF", "state"},
      {http::verb::get, "/v1/admin/history?range=%FF", "range"},
      {http::verb::get, "/v1/admin/queues?%FF=1", "\xEF\xBF\xBD"},
      {http::verb::post, "/v1/admin/jobs/cancel?q=%FF&dry_run=true", "q"},
      {http::verb::post, "/v1/admin/jobs/retry?q=%FF", "q"},
      {http::verb::post, "/v1/admin/jobs/cancel?dry_run=%00", "dry_run"},
      {http::verb::get, "/v1/jobs/%FF%FE", ""},
      {http::verb::post, "/v1/jobs/%C0%AF/cancel", ""},
      {http::verb::get, "/v1/webhook-endpoints/a%ED%A0%80", ""},
  };
  for (const auto& r : rows) {
    std::string target = r.target;
    CAPTURE(target);
    fixture f;
    auto o = check_problem(f.send(r.method, r.target), 400, "invalid_field");
    CHECK(o.at("detail").as_string().ends_with("must be valid UTF-8 without NUL"));
    if (*r.parameter) {
      REQUIRE(o.contains("parameter"));
      CHECK(o.at("parameter") == r.parameter);
    } else {
      CHECK(o.at("detail").as_string().starts_with("the path segment {"));
    }
    CHECK(f.backend.list_calls.empty());
    CHECK(f.backend.cancel_calls.empty());
    CHECK(f.backend.find_calls == 0);
  }
  // Valid UTF-8 past ASCII passes.
  fixture f;
  check_json(f.get("/v1/jobs?q=%C3%A9t%C3%A9%F0%9F%98%80"), 200);
  REQUIRE(f.backend.list_calls.size() == 1);
  CHECK(f.backend.list_calls[0].second.text == "\xC3\xA9t\xC3\xA9\xF0\x9F\x98\x80");
}

TEST_CASE("a query parameter given twice is 400 invalid_field naming it, on every route") {
  // It would otherwise silently be its last value (range=day&range=hour: an hour).
  struct row {
    http::verb method;
    const char* target;
    const char* parameter;
  };
  const row rows[] = {
      {http::verb::get, "/v1/jobs?limit=5&state=queued&limit=6", "limit"},
      {http::verb::get, "/v1/admin/history?range=day&range=hour", "range"},
      {http::verb::post, "/v1/admin/jobs/cancel?dry_run=true&dry_run=false", "dry_run"},
      {http::verb::get, "/v1/jobs?state=queued&state=dead", "state"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.target);
    fixture f;
    auto o = check_problem(f.send(r.method, r.target), 400, "invalid_field");
    CHECK(o.at("detail").as_string() == std::string(r.parameter) + " is given more than once");
    CHECK(o.at("parameter") == r.parameter);
    CHECK(f.backend.list_calls.empty());
    CHECK(f.backend.cancel_calls.empty());
  }
}

TEST_CASE("empty query segments name no parameter: dropped, not refused") {
  // URL builders leave them: `?`, a trailing or leading `&`, `&&`.
  for (const char* target : {"/v1/jobs?", "/v1/jobs?limit=1&", "/v1/jobs?&limit=1",
                             "/v1/jobs?&&&limit=1&&", "/v1/jobs?state=queued&&limit=1"}) {
    CAPTURE(target);
    fixture f;
    check_json(f.get(target), 200);
    REQUIRE(f.backend.list_calls.size() == 1);
  }
  fixture f;
  check_json(f.get("/v1/jobs?&&&limit=1&&"), 200);
  REQUIRE(f.backend.list_calls.size() == 1);
  CHECK(f.backend.list_calls[0].second.limit == 1);
  // Routes that take no query at all (the fake backend has no broker: 503).
  for (const char* target : {"/v1/queues?", "/v1/queues?&", "/v1/keys?&&"}) {
    CAPTURE(target);
    fixture g;
    CHECK(g.get(target).result_int() != 400);
  }
  // A value without a name is still refused, and said so.
  auto o = check_problem(f.get("/v1/jobs?=5&limit=1"), 400, "unknown_field");
  CHECK(o.at("detail") == "a query parameter has no name (\"=5\")");
  CHECK(o.at("parameter") == "=5");
}

TEST_CASE("a query parameter or a body that a route does not take is refused, never ignored") {
  // A bulk cancel's filter sent as JSON once matched every job of the tenant.
  struct row {
    http::verb method;
    const char* target;
    const char* body;
    const char* code;
  };
  const row rows[] = {
      {http::verb::post, "/v1/admin/jobs/cancel?dry_run=true", R"({"queue":"webhooks"})",
       "unexpected_body"},
      {http::verb::post, "/v1/admin/jobs/retry", "garbage{{{", "unexpected_body"},
      {http::verb::post, "/v1/jobs/0191e4a0-0000-7000-8000-000000000000/cancel", "{}",
       "unexpected_body"},
      {http::verb::post, "/v1/admin/queues/email/pause", R"({"queue":"email"})", "unexpected_body"},
      {http::verb::delete_, "/v1/keys/1", "{}", "unexpected_body"},
      {http::verb::get, "/v1/jobs", "{}", "unexpected_body"},
      {http::verb::post, "/v1/jobs/0191e4a0-0000-7000-8000-000000000000/retry?force=true", "",
       "unknown_field"},
      {http::verb::post, "/v1/admin/queues/email/pause?x=1", "", "unknown_field"},
      {http::verb::post, "/v1/admin/queues/email/resume?x=1", "", "unknown_field"},
      {http::verb::get, "/v1/admin/settings?x=1", "", "unknown_field"},
      {http::verb::get, "/v1/admin/queues?x=1", "", "unknown_field"},
      {http::verb::get, "/v1/queues?x=1", "", "unknown_field"},
      {http::verb::get, "/v1/keys?x=1", "", "unknown_field"},
      {http::verb::get, "/v1/jobs/0191e4a0-0000-7000-8000-000000000000?x=1", "", "unknown_field"},
      {http::verb::post, "/v1/jobs?x=1", R"({"queue":"processing","type":"noop","payload":{}})",
       "unknown_field"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.target);
    fixture f;
    auto o = check_problem(f.send(r.method, r.target, "Bearer key-a", r.body), 400, r.code);
    if (std::string(r.code) == "unknown_field") {
      auto parameter = std::string(o.at("parameter").as_string());
      CHECK((parameter == "x" || parameter == "force"));
    }
    CHECK(f.backend.submit_calls == 0);
    CHECK(f.backend.list_calls.empty());
    CHECK(f.backend.cancel_calls.empty());
  }
  // The bulk route names where its filter goes.
  fixture f;
  auto o = check_problem(
      f.send(http::verb::post, "/v1/admin/jobs/cancel", "Bearer key-a", R"({"state":"queued"})"),
      400, "unexpected_body");
  CHECK(o.at("detail") == "this route takes no request body: its parameters go in the query");
  // Without a body the same route goes on to its backend.
  f.send(http::verb::post, "/v1/jobs/0191e4a0-0000-7000-8000-000000000000/cancel");
  CHECK(f.backend.cancel_calls.size() == 1);
}

TEST_CASE("GET /v1/jobs passes valid filters to the backend") {
  fixture f;
  f.backend.list_body =
      R"({"jobs":[{"id":"01890a5d-ac96-774b-bcce-b302099a8057"}],"next_cursor":null})";
  auto res = f.get(std::string("/v1/jobs?queue=email&state=failed&limit=500&cursor=") + id_a);
  check_json(res, 200);
  CHECK(res.body() == f.backend.list_body);
  REQUIRE(f.backend.list_calls.size() == 1);
  const auto& [tenant, filter] = f.backend.list_calls[0];
  CHECK(tenant == "tenant-a");
  CHECK(filter.queue == "email");
  CHECK(filter.state == "failed");
  CHECK(filter.limit == 500);
  CHECK(filter.before == id_a);
}

TEST_CASE("GET /v1/jobs without parameters lists everything of the tenant") {
  fixture f;
  check_json(f.get("/v1/jobs", "Bearer key-b"), 200);
  REQUIRE(f.backend.list_calls.size() == 1);
  const auto& [tenant, filter] = f.backend.list_calls[0];
  CHECK(tenant == "tenant-b");
  CHECK(filter.queue.empty());
  CHECK(filter.state.empty());
  CHECK(filter.before.empty());
  CHECK(filter.limit == jobs::job_filter{}.limit);
}

TEST_CASE("GET /v1/jobs decodes percent-encoded parameters and takes limit 1") {
  fixture f;
  check_json(f.get("/v1/jobs?queue=%65mail&state=%71ueued&limit=1"), 200);
  REQUIRE(f.backend.list_calls.size() == 1);
  CHECK(f.backend.list_calls[0].second.queue == "email");
  CHECK(f.backend.list_calls[0].second.state == "queued");
  CHECK(f.backend.list_calls[0].second.limit == 1);
}

TEST_CASE("a viewer key reads but cannot submit; submitter and admin keys can") {
  fixture f;
  f.backend.keys["key-viewer"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "viewer"};
  f.backend.keys["key-submitter"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "submitter"};
  check_problem(f.post_job(noop_job, "application/json", "Bearer key-viewer"), 403, "forbidden");
  CHECK(f.backend.submitted.empty());
  check_json(f.get("/v1/jobs", "Bearer key-viewer"), 200);
  check_json(f.post_job(noop_job, "application/json", "Bearer key-submitter"), 202);
  check_json(f.post_job(noop_job), 202);
}

namespace {
std::string job_in(const char* id, const char* state) {
  return std::string(R"({"id":")") + id + R"(","state":")" + state + "\"}";
}
std::string cancel_target(const std::string& id) { return "/v1/jobs/" + id + "/cancel"; }
}  // namespace

TEST_CASE("POST /v1/jobs/{id}/cancel of a scheduled, queued or failed job is 200 with the job") {
  for (const char* state : {"scheduled", "queued", "failed"}) {
    CAPTURE(state);
    fixture f;
    f.backend.stored[{"tenant-a", id_a}] = job_in(id_a, state);
    auto res = f.send(http::verb::post, cancel_target(id_a));
    check_json(res, 200);
    auto o = parse_object(res.body());
    CHECK(o.at("id") == id_a);
    CHECK(o.at("state") == "cancelled");
    REQUIRE(f.backend.cancel_calls.size() == 1);
    CHECK(f.backend.cancel_calls[0] == std::pair<std::string, std::string>{"tenant-a", id_a});
  }
}

TEST_CASE("POST /v1/jobs/{id}/cancel of a running job is 202: it is asked to stop") {
  fixture f;
  f.backend.stored[{"tenant-a", id_a}] = job_in(id_a, "running");
  auto res = f.send(http::verb::post, cancel_target(id_a));
  check_json(res, 202);
  CHECK(parse_object(res.body()).at("state") == "running");
  CHECK(f.backend.cancel_calls.size() == 1);
}

TEST_CASE("POST /v1/jobs/{id}/cancel of a final job is 409 not_cancellable") {
  for (const char* state : {"succeeded", "dead", "cancelled"}) {
    CAPTURE(state);
    fixture f;
    f.backend.stored[{"tenant-a", id_a}] = job_in(id_a, state);
    auto o = check_problem(f.send(http::verb::post, cancel_target(id_a)), 409, "not_cancellable");
    CHECK(std::string(o.at("detail").as_string()) ==
          fmt::format("the job is already final ({}): only a scheduled, "
                      "queued, failed or running job can be cancelled",
                      state));
    // Nothing changed.
    CHECK(f.backend.stored[{"tenant-a", id_a}] == job_in(id_a, state));
  }
}

TEST_CASE("POST /v1/jobs/{id}/cancel of another tenant's or an unknown job is 404") {
  fixture f;
  f.backend.stored[{"tenant-b", id_b}] = job_in(id_b, "queued");
  check_problem(f.send(http::verb::post, cancel_target(id_b)), 404, "not_found");
  check_problem(f.send(http::verb::post, cancel_target(id_a)), 404, "not_found");
  CHECK(f.backend.stored[{"tenant-b", id_b}] == job_in(id_b, "queued"));
  // Its owner can.
  check_json(f.send(http::verb::post, cancel_target(id_b), "Bearer key-b"), 200);
}

TEST_CASE("POST /v1/jobs/{id}/cancel with an id that is not a UUID is 404 without a lookup") {
  fixture f;
  for (std::string id : {"nope", "01890a5d-ac96-774b-bcce-b302099a805", "%27%20OR%201%3D1"}) {
    CAPTURE(id);
    check_problem(f.send(http::verb::post, cancel_target(id)), 404, "not_found");
  }
  CHECK(f.backend.cancel_calls.empty());
}

TEST_CASE("POST /v1/jobs/{id}/cancel needs a key that may write") {
  fixture f;
  f.backend.keys["key-viewer"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "viewer"};
  f.backend.keys["key-submitter"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "submitter"};
  f.backend.stored[{"tenant-a", id_a}] = job_in(id_a, "queued");
  check_problem(f.send(http::verb::post, cancel_target(id_a), ""), 401, "unauthorized");
  check_problem(f.send(http::verb::post, cancel_target(id_a), "Bearer nope"), 401, "unauthorized");
  check_problem(f.send(http::verb::post, cancel_target(id_a), "Bearer key-viewer"), 403,
                "forbidden");
  CHECK(f.backend.cancel_calls.empty());
  check_json(f.send(http::verb::post, cancel_target(id_a), "Bearer key-submitter"), 200);
}

TEST_CASE("POST /v1/jobs/{id}/cancel: other methods are 405, a backend failure 503") {
  fixture f;
  auto res = f.get(cancel_target(id_a));
  check_problem(res, 405, "method_not_allowed");
  CHECK(res[http::field::allow] == "POST");
  CHECK(f.backend.cancel_calls.empty());

  f.backend.stored[{"tenant-a", id_a}] = job_in(id_a, "queued");
  f.backend.cancel_throws = true;
  res = f.send(http::verb::post, cancel_target(id_a));
  check_problem(res, 503, "unavailable");
  CHECK_FALSE(res[http::field::retry_after].empty());
  CHECK(f.backend.cancel_calls.size() == 1);
}

namespace {

http_request keyed_post(const std::string& body, const std::vector<std::string>& keys) {
  http_request req{http::verb::post, "/v1/jobs", 11};
  req.set(http::field::authorization, "Bearer key-a");
  req.set(http::field::content_type, "application/json");
  for (const auto& k : keys) req.insert("Idempotency-Key", k);
  req.body() = body;
  req.prepare_payload();
  return req;
}

}  // namespace

TEST_CASE("POST /v1/jobs hands the Idempotency-Key header to the backend with the fingerprint") {
  fixture f;
  auto res = f.run(keyed_post(noop_job, {"order-1234"}));
  check_json(res, 202);
  CHECK(res.find("Idempotent-Replayed") == res.end());
  REQUIRE(f.backend.submitted.size() == 1);
  CHECK(f.backend.submitted[0].idempotency_key == "order-1234");
  CHECK(f.backend.submitted[0].request_hash.size() == 64);
  // Without a key, none.
  check_json(f.post_job(noop_job), 202);
  REQUIRE(f.backend.submitted.size() == 2);
  CHECK(f.backend.submitted[1].idempotency_key.empty());
  CHECK(f.backend.submitted[1].request_hash.empty());
}

TEST_CASE("a bad or repeated Idempotency-Key header is 400 invalid_field naming the header") {
  for (std::vector<std::string> keys : {std::vector<std::string>{""},
                                        {std::string(256, 'k')},
                                        {"caf\xc3\xa9"},
                                        {"a", "a"},
                                        {"a", "b"}}) {
    CAPTURE(keys.size());
    CAPTURE(keys.front());
    fixture f;
    auto o = check_problem(f.run(keyed_post(noop_job, keys)), 400, "invalid_field");
    CHECK(o.at("parameter") == "Idempotency-Key");
    CHECK(f.backend.submit_calls == 0);
  }
}

TEST_CASE("an Idempotency-Key header that differs from idempotency_key is 400") {
  fixture f;
  auto body = R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":"k1"})";
  auto o = check_problem(f.run(keyed_post(body, {"k2"})), 400, "invalid_field");
  CHECK(o.at("pointer") == "/idempotency_key");
  CHECK(f.backend.submit_calls == 0);
  check_json(f.run(keyed_post(body, {"k1"})), 202);
  REQUIRE(f.backend.submitted.size() == 1);
  CHECK(f.backend.submitted[0].idempotency_key == "k1");
}

TEST_CASE("a replay is 200 with the original job as it is now and Idempotent-Replayed: true") {
  fixture f;
  f.backend.submit_replay = jobs::replayed_job{jobs::job_id{id_b}, jobs::job_state::succeeded};
  auto res = f.run(keyed_post(noop_job, {"order-1234"}));
  check_json(res, 200);
  CHECK(res["Idempotent-Replayed"] == "true");
  auto o = parse_object(res.body());
  CHECK(o.at("id") == id_b);
  CHECK(o.at("state") == "succeeded");
  CHECK(o.at("links").at("self") == (std::string("/v1/jobs/") + id_b).c_str());
  CHECK(res[http::field::location] == std::string("/v1/jobs/") + id_b);
}

TEST_CASE("409 idempotency_key_reused from the backend is answered as it is") {
  fixture f;
  f.backend.submit_problem =
      jobs::make_problem(409, "idempotency_key_reused", "the key belongs to another request");
  auto res = f.run(keyed_post(noop_job, {"order-1234"}));
  auto o = check_problem(res, 409, "idempotency_key_reused");
  CHECK(o.at("title") != jobs::make_problem(409, "no_such_code", "x").title.c_str());
  CHECK(res.find("Idempotent-Replayed") == res.end());
  CHECK(res.find(http::field::location) == res.end());
}

TEST_CASE("POST /v1/jobs/{id}/retry reschedules a dead job, refuses others, hides other tenants'") {
  fixture f;
  const std::string dead = "01890a5d-ac96-774b-bcce-b302099a8001";
  const std::string done = "01890a5d-ac96-774b-bcce-b302099a8002";
  f.backend.stored[{"tenant-a", dead}] = R"({"id":"x","state":"dead"})";
  f.backend.stored[{"tenant-a", done}] = R"({"id":"y","state":"succeeded"})";
  auto res = f.send(http::verb::post, "/v1/jobs/" + dead + "/retry");
  check_json(res, 202);
  CHECK(parse_object(res.body()).at("state") == "scheduled");
  auto refused =
      check_problem(f.send(http::verb::post, "/v1/jobs/" + done + "/retry"), 409, "not_retryable");
  CHECK(refused.at("detail") ==
        "the job's state is succeeded: only a dead or failed job can be retried");
  check_problem(f.send(http::verb::post, "/v1/jobs/" + dead + "/retry", "Bearer key-b"), 404,
                "not_found");
  check_problem(f.send(http::verb::post, "/v1/jobs/not-a-uuid/retry"), 404, "not_found");
  check_problem(f.send(http::verb::get, "/v1/jobs/" + dead + "/retry"), 405, "method_not_allowed");
}

TEST_CASE("POST /v1/jobs/batch is 202 with every job, in order, each with its own id") {
  fixture f;
  auto res = post_batch(f, R"({"jobs":[)"
                           R"({"queue":"processing","type":"noop","payload":{}},)"
                           R"({"queue":"processing","type":"hash","payload":{"input":"x"}},)"
                           R"({"queue":"processing","type":"noop","payload":{},)"
                           R"("run_at":"2200-01-01T00:00:00Z"}]})");
  check_json(res, 202);
  auto o = parse_object(res.body());
  const auto& list = o.at("jobs").as_array();
  REQUIRE(list.size() == 3);
  REQUIRE(f.backend.submitted.size() == 3);
  std::set<std::string> ids;
  const char* states[] = {"queued", "queued", "scheduled"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& item = list[i].as_object();
    std::string id(item.at("id").as_string());
    CHECK(jobs::is_uuid(id));
    CHECK(item.at("state") == states[i]);
    CHECK(item.at("links").at("self") == ("/v1/jobs/" + id).c_str());
    CHECK_FALSE(item.contains("replayed"));
    CHECK(f.backend.submitted[i].id.value == id);
    CHECK(f.backend.submitted[i].tenant.value == "tenant-a");
    ids.insert(id);
  }
  CHECK(ids.size() == 3);
  CHECK(f.backend.submitted[1].type == "hash");
}

TEST_CASE("POST /v1/jobs/batch with invalid members records nothing and lists each problem") {
  fixture f;
  auto res = post_batch(f, R"({"jobs":[)"
                           R"({"queue":"processing","type":"noop","payload":{}},)"
                           R"({"queue":"processing","type":"hash","payload":{"input":7}},)"
                           R"(42,)"
                           R"({"queue":"mail","type":"noop","payload":{}}]})");
  auto o = check_problem(res, 400, "batch_invalid");
  CHECK(f.backend.submit_calls == 0);
  CHECK(o.at("detail") == "3 of 4 jobs are invalid; nothing was recorded");
  const auto& errors = o.at("errors").as_array();
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].at("code") == "payload_invalid");
  CHECK(errors[0].at("pointer") == "/jobs/1/payload/input");
  CHECK(errors[1].at("code") == "invalid_request");
  CHECK(errors[1].at("pointer") == "/jobs/2");
  CHECK(errors[2].at("code") == "unknown_queue");
  CHECK(errors[2].at("pointer") == "/jobs/3/queue");
  for (const auto& e : errors) CHECK_FALSE(e.at("title").as_string().empty());
}

TEST_CASE("POST /v1/jobs/batch refuses a body that is not a batch") {
  jobs::router_options small;
  small.batch.max_jobs = 2;
  fixture f(small);
  struct bad {
    std::string body, code, pointer;
  };
  const bad cases[] = {
      {"[1]", "invalid_request", ""},
      {"{", "invalid_json", ""},
      {"{}", "missing_field", "/jobs"},
      {R"({"jobs":{}})", "invalid_field", "/jobs"},
      {R"({"jobs":[]})", "invalid_field", "/jobs"},
      {R"({"jobs":[{},{},{}]})", "invalid_field", "/jobs"},
      {R"({"jobs":[],"priority":1})", "unknown_field", "/priority"},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body);
    auto o = check_problem(post_batch(f, c.body), 400, c.code);
    if (!c.pointer.empty()) CHECK(o.at("pointer") == c.pointer.c_str());
  }
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs/batch refuses two members with one idempotency key") {
  fixture f;
  auto res =
      post_batch(f, R"({"jobs":[)"
                    R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":"k"},)"
                    R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":"j"},)"
                    R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":"k"}]})");
  auto o = check_problem(res, 400, "batch_invalid");
  REQUIRE(o.at("errors").as_array().size() == 1);
  CHECK(o.at("errors").at(0).at("pointer") == "/jobs/2/idempotency_key");
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs/batch refuses the Idempotency-Key header, and needs JSON and a writer") {
  fixture f;
  f.backend.keys["viewer"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "viewer"};
  http_request req{http::verb::post, "/v1/jobs/batch", 11};
  req.set(http::field::authorization, "Bearer key-a");
  req.set(http::field::content_type, "application/json");
  req.set("Idempotency-Key", "k");
  req.body() = R"({"jobs":[)" + noop_job + "]}";
  req.prepare_payload();
  auto o = check_problem(f.run(req), 400, "invalid_field");
  CHECK(o.at("parameter") == "Idempotency-Key");
  check_problem(f.send(http::verb::post, "/v1/jobs/batch", "Bearer key-a",
                       R"({"jobs":[)" + noop_job + "]}", "text/plain"),
                415, "unsupported_media_type");
  check_problem(post_batch(f, R"({"jobs":[)" + noop_job + "]}", "Bearer viewer"), 403, "forbidden");
  check_problem(post_batch(f, R"({"jobs":[)" + noop_job + "]}", ""), 401, "unauthorized");
  CHECK(f.backend.submit_calls == 0);
}

TEST_CASE("POST /v1/jobs/batch with a refused member answers its status and says which ran") {
  fixture f;
  f.backend.refuse_call[2] = jobs::make_problem(503, "unavailable", "the broker did not confirm");
  f.backend.refuse_call[3] = jobs::make_problem(409, "idempotency_key_reused", "another request");
  auto res = post_batch(
      f, R"({"jobs":[)" + noop_job + "," + noop_job + "," + noop_job + "," + noop_job + "]}");
  auto o = check_problem(res, 503, "batch_incomplete");
  CHECK_FALSE(res[http::field::retry_after].empty());
  CHECK(o.at("detail") ==
        "2 of 4 jobs were not accepted (see jobs[].error); the other 2 were accepted and will run");
  const auto& list = o.at("jobs").as_array();
  REQUIRE(list.size() == 4);
  CHECK(list[0].at("id") == f.backend.submitted[0].id.value.c_str());
  CHECK(list[1].at("error").at("code") == "unavailable");
  CHECK(list[2].at("error").at("code") == "idempotency_key_reused");
  CHECK(list[3].at("id") == f.backend.submitted[1].id.value.c_str());
}

TEST_CASE("POST /v1/jobs/batch with every member refused says none was accepted") {
  fixture f;
  f.backend.submit_problem = jobs::make_problem(503, "unavailable", "the broker did not confirm");
  auto o = check_problem(post_batch(f, R"({"jobs":[)" + noop_job + "," + noop_job + "]}"), 503,
                         "batch_incomplete");
  CHECK(o.at("detail") == "none of the 2 jobs was accepted (see jobs[].error)");
  f.backend.submit_problem.reset();
  f.backend.refuse_call[4] = jobs::make_problem(503, "unavailable", "the broker did not confirm");
  o = check_problem(post_batch(f, R"({"jobs":[)" + noop_job + "," + noop_job + "]}"), 503,
                    "batch_incomplete");
  CHECK(o.at("detail") ==
        "1 of 2 jobs was not accepted (see jobs[].error); the other 1 was accepted and will run");
}

TEST_CASE("POST /v1/jobs/batch marks a member its idempotency key already names") {
  fixture f;
  f.backend.submit_replay = jobs::replayed_job{jobs::job_id{id_b}, jobs::job_state::succeeded};
  auto res = post_batch(f, R"({"jobs":[{"queue":"processing","type":"noop","payload":{},)"
                           R"("idempotency_key":"k"}]})");
  check_json(res, 202);
  auto item = parse_object(res.body()).at("jobs").at(0).as_object();
  CHECK(item.at("id") == id_b);
  CHECK(item.at("state") == "succeeded");
  CHECK(item.at("replayed") == true);
}

TEST_CASE("POST /v1/keys creates a key of the caller's tenant, shown once, for admins only") {
  fixture f;
  f.backend.keys["submitter"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "submitter"};
  f.backend.keys["viewer"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "viewer"};
  auto res = f.send(http::verb::post, "/v1/keys", "Bearer key-b",
                    R"({"name":"ci","role":"viewer","expires_at":"2200-01-01T00:00:00Z"})");
  check_json(res, 201);
  CHECK(res[http::field::cache_control] == "no-store");
  REQUIRE(f.backend.created_keys.size() == 1);
  CHECK(f.backend.created_keys[0].first == "tenant-b");
  CHECK(f.backend.created_keys[0].second.name == "ci");
  CHECK(f.backend.created_keys[0].second.role == "viewer");
  CHECK(f.backend.created_keys[0].second.expires_at == "2200-01-01T00:00:00.000Z");

  check_json(f.send(http::verb::post, "/v1/keys", "Bearer key-a", "{}"), 201);
  CHECK(f.backend.created_keys[1].second.role == "submitter");
  // Every member is optional: no body at all (nor a Content-Type) is {}.
  check_json(f.send(http::verb::post, "/v1/keys", "Bearer key-a", "", ""), 201);
  CHECK(f.backend.created_keys[2].second.role == "submitter");
  CHECK(f.backend.created_keys[2].second.name.empty());
  // A body that is not JSON still needs the JSON type.
  check_problem(f.send(http::verb::post, "/v1/keys", "Bearer key-a", "name=x", "text/plain"), 415,
                "unsupported_media_type");

  for (const char* who : {"Bearer submitter", "Bearer viewer"}) {
    check_problem(f.send(http::verb::post, "/v1/keys", who, "{}"), 403, "forbidden");
    check_problem(f.send(http::verb::get, "/v1/keys", who), 403, "forbidden");
    check_problem(f.send(http::verb::delete_, "/v1/keys/1", who), 403, "forbidden");
  }
  CHECK(f.backend.created_keys.size() == 3);
  CHECK(f.backend.revoked.empty());
}

TEST_CASE("POST /v1/keys refuses bad members") {
  fixture f;
  struct bad {
    std::string body, code, pointer;
  };
  const bad cases[] = {
      {"[]", "invalid_request", ""},
      {"{", "invalid_json", ""},
      {R"({"role":"root"})", "invalid_field", "/role"},
      {R"({"name":7})", "invalid_field", "/name"},
      {R"({"name":")" + std::string(101, 'n') + R"("})", "invalid_field", "/name"},
      {R"({"expires_at":"2001-01-01T00:00:00Z"})", "invalid_field", "/expires_at"},
      {R"({"expires_at":"tomorrow"})", "invalid_field", "/expires_at"},
      {R"({"expires_at":"9999-12-31T23:59:59Z"})", "invalid_field", "/expires_at"},
      {R"({"name":"a\u0000b"})", "invalid_field", "/name"},
      {R"({"tenant":"other"})", "unknown_field", "/tenant"},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body);
    auto o =
        check_problem(f.send(http::verb::post, "/v1/keys", "Bearer key-a", c.body), 400, c.code);
    if (!c.pointer.empty()) CHECK(o.at("pointer") == c.pointer.c_str());
  }
  CHECK(f.backend.created_keys.empty());
  // Each says what is wrong: past, out of range, a NUL.
  auto detail = [&](const std::string& body) {
    auto o = check_problem(f.send(http::verb::post, "/v1/keys", "Bearer key-a", body), 400,
                           "invalid_field");
    return std::string(o.at("detail").as_string());
  };
  CHECK(detail(R"({"expires_at":"2001-01-01T00:00:00Z"})") == "expires_at must be in the future");
  CHECK(detail(R"({"expires_at":"9999-12-31T23:59:59Z"})")
            .starts_with("expires_at must be an RFC 3339 date-time between 1970 and 2262"));
  CHECK(detail(R"({"name":"a\u0000b"})") == "name must not hold U+0000 (NUL)");
}

TEST_CASE("GET /v1/keys lists the caller's tenant's keys; DELETE revokes one or is 404") {
  fixture f;
  auto list = f.get("/v1/keys", "Bearer key-b");
  check_json(list, 200);
  CHECK(parse_object(list.body()).at("tenant") == "tenant-b");
  check_json(f.send(http::verb::delete_, "/v1/keys/1", "Bearer key-a"), 200);
  check_problem(f.send(http::verb::delete_, "/v1/keys/2", "Bearer key-a"), 404, "not_found");
  REQUIRE(f.backend.revoked.size() == 2);
  CHECK(f.backend.revoked[0] == std::pair<std::string, std::string>{"tenant-a", "1"});
}

TEST_CASE("requests over a key's rate are 429 rate_limited with Retry-After; others go on") {
  jobs::router_options o;
  o.rates = {.key_per_second = 1, .key_burst = 3, .tenant_per_second = 0, .tenant_burst = 0};
  fixture f(o);
  f.backend.keys["key-a2"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "admin"};
  for (int i = 0; i < 3; ++i) check_json(f.post_job(noop_job), 202);
  auto res = f.post_job(noop_job);
  auto p = check_problem(res, 429, "rate_limited");
  CHECK(res[http::field::retry_after] == "1");
  CHECK(f.backend.submitted.size() == 3);
  // Another key (even of the same tenant) has its own bucket.
  check_json(f.post_job(noop_job, "application/json", "Bearer key-a2"), 202);
  // A batch costs one token per job.
  check_json(post_batch(f, R"({"jobs":[)" + noop_job + "," + noop_job + "]}", "Bearer key-b"), 202);
  auto over = post_batch(f, R"({"jobs":[)" + noop_job + "," + noop_job + "]}", "Bearer key-b");
  check_problem(over, 429, "rate_limited");
}

TEST_CASE("a tenant's rate covers all its keys") {
  jobs::router_options o;
  o.rates = {.key_per_second = 0, .key_burst = 0, .tenant_per_second = 1, .tenant_burst = 2};
  fixture f(o);
  f.backend.keys["key-a2"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "admin"};
  check_json(f.post_job(noop_job), 202);
  check_json(f.post_job(noop_job, "application/json", "Bearer key-a2"), 202);
  auto o3 =
      check_problem(f.post_job(noop_job, "application/json", "Bearer key-a2"), 429, "rate_limited");
  CHECK(o3.at("detail").as_string().find("tenant") != std::string::npos);
  check_json(f.post_job(noop_job, "application/json", "Bearer key-b"), 202);
}

TEST_CASE("a batch larger than a rate limit's burst is 413 batch_over_rate_burst, not retried") {
  // It could never pass: before, it got 429 with Retry-After: 1 for ever.
  auto batch_of = [](int n) {
    std::string body = R"({"jobs":[)";
    for (int i = 0; i < n; ++i) body += (i ? "," : "") + std::string(noop_job);
    return body + "]}";
  };
  SUBCASE("the key's burst") {
    jobs::router_options o;
    o.rates = {.key_per_second = 2, .key_burst = 3, .tenant_per_second = 0, .tenant_burst = 0};
    fixture f(o);
    for (int round = 0; round < 3; ++round) {
      auto res = post_batch(f, batch_of(10));
      auto p = check_problem(res, 413, "batch_over_rate_burst");
      CHECK(res.find(http::field::retry_after) == res.end());
      auto detail = std::string(p.at("detail").as_string());
      CHECK(detail.find("batch of 10 jobs") != std::string::npos);
      CHECK(detail.find("API key's rate limit, whose burst is 3 jobs") != std::string::npos);
      CHECK(detail.find("split it into batches of at most 3 jobs") != std::string::npos);
    }
    CHECK(f.backend.submitted.empty());
    // A batch of exactly the burst still passes once the bucket is full again.
    check_json(post_batch(f, batch_of(3), "Bearer key-b"), 202);
    CHECK(f.backend.submitted.size() == 3);
  }
  SUBCASE("the tenant's burst, when it is the smaller") {
    jobs::router_options o;
    o.rates = {.key_per_second = 10, .key_burst = 50, .tenant_per_second = 1, .tenant_burst = 4};
    fixture f(o);
    auto p = check_problem(post_batch(f, batch_of(5)), 413, "batch_over_rate_burst");
    CHECK(std::string(p.at("detail").as_string()).find("tenant's rate limit, whose burst is 4") !=
          std::string::npos);
    check_json(post_batch(f, batch_of(4), "Bearer key-b"), 202);
  }
  SUBCASE("no ceiling with both limits off") {
    fixture f;
    check_json(post_batch(f, batch_of(10)), 202);
  }
}

TEST_CASE("a batch takes its tokens at once: Retry-After is the wait for all of them") {
  auto batch_of = [](int n) {
    std::string body = R"({"jobs":[)";
    for (int i = 0; i < n; ++i) body += (i ? "," : "") + std::string(noop_job);
    return body + "]}";
  };
  jobs::router_options o;
  o.rates = {.key_per_second = 1, .key_burst = 5, .tenant_per_second = 0, .tenant_burst = 0};
  fixture f(o);
  check_json(post_batch(f, batch_of(5)), 202);  // the bucket is empty now
  // Too large for the burst: 413 at once, not a 429 to wait for first.
  auto big = post_batch(f, batch_of(6));
  check_problem(big, 413, "batch_over_rate_burst");
  CHECK(big.find(http::field::retry_after) == big.end());
  // Two jobs at 1 a second: 2 s, not the 1 s a single token would take
  // (after which a retry would be refused again, for ever at this rate).
  auto two = post_batch(f, batch_of(2));
  check_problem(two, 429, "rate_limited");
  CHECK(two[http::field::retry_after] == "2");
  // A batch refused before its jobs are counted still costs one token.
  check_problem(post_batch(f, "{", "Bearer key-b"), 400, "invalid_json");
  for (int i = 0; i < 4; ++i)
    check_json(f.post_job(noop_job, "application/json", "Bearer key-b"), 202);
  check_problem(f.post_job(noop_job, "application/json", "Bearer key-b"), 429, "rate_limited");
  CHECK(f.backend.submitted.size() == 9);
}

TEST_CASE("check_head: what is refused before a request's body is read") {
  jobs::metrics::registry reg;
  jobs::api_metrics m(reg);
  jobs::router_options o;
  o.metrics = &m;
  fixture f(o);
  f.backend.keys["key-v"] = jobs::principal{jobs::tenant_id{"tenant-a"}, "viewer"};
  auto check = [&](http::verb method, const char* target, const char* auth) {
    http_request req{method, target, 11};
    if (*auth) req.set(http::field::authorization, auth);
    req.set(http::field::expect, "100-continue");
    asio::io_context ioc;
    std::optional<jobs::router::head_check> out;
    asio::co_spawn(ioc, f.router.check_head(req.base()),
                   [&](std::exception_ptr e, jobs::router::head_check c) {
                     REQUIRE_FALSE(e);
                     out = std::move(c);
                   });
    ioc.run();
    REQUIRE(out);
    return std::move(*out);
  };
  SUBCASE("a live key passes, and handle() then uses its principal, not a second lookup") {
    auto c = check(http::verb::post, "/v1/jobs", "Bearer key-a");
    CHECK_FALSE(c.refusal);
    REQUIRE(c.who);
    CHECK(c.who->tenant.value == "tenant-a");
    CHECK(f.backend.authenticate_calls == 1);
    http_request req{http::verb::post, "/v1/jobs", 11};
    req.set(http::field::authorization, "Bearer key-a");
    req.set(http::field::content_type, "application/json");
    req.body() = noop_job;
    req.prepare_payload();
    asio::io_context ioc;
    std::optional<http_response> res;
    asio::co_spawn(ioc, f.router.handle(req, &*c.who), [&](std::exception_ptr e, http_response r) {
      REQUIRE_FALSE(e);
      res = std::move(r);
    });
    ioc.run();
    REQUIRE(res);
    check_json(*res, 202);
    CHECK(f.backend.authenticate_calls == 1);
    REQUIRE(f.backend.submitted.size() == 1);
    CHECK(f.backend.submitted[0].tenant.value == "tenant-a");
  }
  SUBCASE("the Bearer scheme in any case; a route that takes no body refuses one, no lookup") {
    CHECK_FALSE(check(http::verb::post, "/v1/jobs/batch", "bearer key-b").refusal);
    CHECK(f.backend.authenticate_calls == 1);
    // check_head is asked only for a request with a body: a route without a
    // key that takes none refuses it before it is read.
    for (auto [method, target] :
         {std::pair{http::verb::get, "/healthz"}, std::pair{http::verb::post, "/admin/x"},
          std::pair{http::verb::get, "/metrics"}}) {
      CAPTURE(target);
      auto probe = check(method, target, "");
      REQUIRE(probe.refusal);
      check_problem(*probe.refusal, 400, "unexpected_body");
      CHECK_FALSE(probe.who);
    }
    CHECK(f.backend.authenticate_calls == 1);
  }
  SUBCASE("an unknown key is 401 after its lookup; no key or another scheme without one") {
    for (const char* auth : {"Bearer key-revoked", "", "Basic abc"}) {
      CAPTURE(auth);
      auto c = check(http::verb::put, "/v1/webhook-endpoints/x", auth);
      REQUIRE(c.refusal);
      check_problem(*c.refusal, 401, "unauthorized");
      CHECK((*c.refusal)[http::field::www_authenticate] == "Bearer");
      CHECK_FALSE(c.refusal->keep_alive());
      CHECK_FALSE(c.who);
    }
    CHECK(f.backend.authenticate_calls == 1);
    CHECK(m.http.with({"PUT", "/v1/webhook-endpoints/{name}", "401"}).count() == 3);
  }
  SUBCASE("a key whose role may not use the route is 403") {
    auto c = check(http::verb::post, "/v1/jobs", "Bearer key-v");
    REQUIRE(c.refusal);
    check_problem(*c.refusal, 403, "forbidden");
    CHECK_FALSE(c.who);
    // The viewer may read, but GET /v1/jobs takes no body.
    auto read = check(http::verb::get, "/v1/jobs", "Bearer key-v");
    REQUIRE(read.refusal);
    check_problem(*read.refusal, 400, "unexpected_body");
  }
  SUBCASE("a method the route does not take is 405 with Allow; no route is 404; no lookup") {
    auto c = check(http::verb::delete_, "/v1/jobs", "Bearer key-a");
    REQUIRE(c.refusal);
    check_problem(*c.refusal, 405, "method_not_allowed");
    CHECK((*c.refusal)[http::field::allow] == "POST, GET, HEAD");
    CHECK(m.http.with({"DELETE", "/v1/jobs", "405"}).count() == 1);
    c = check(http::verb::put, "/healthz", "");
    REQUIRE(c.refusal);
    check_problem(*c.refusal, 405, "method_not_allowed");
    c = check(http::verb::post, "/v1/nowhere", "Bearer key-a");
    REQUIRE(c.refusal);
    check_problem(*c.refusal, 404, "not_found");
    CHECK(m.http.with({"POST", "unmatched", "404"}).count() == 1);
    CHECK(f.backend.authenticate_calls == 0);
  }
  SUBCASE("a key that cannot be looked up is 503 unavailable") {
    f.backend.outage = true;
    auto c = check(http::verb::post, "/v1/jobs", "Bearer key-a");
    REQUIRE(c.refusal);
    check_problem(*c.refusal, 503, "unavailable");
    CHECK((*c.refusal)[http::field::retry_after] == "1");
  }
}
