// The OpenAPI document is the contract: it documents exactly the routes the
// router serves, and its schemas accept what the server sends.
#include "support/openapi.hpp"
#include "api/router.hpp"
#include "support/files.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace jobs;

TEST_CASE("the OpenAPI document describes exactly the router's routes") {
  test::openapi_contract api;
  std::set<std::string> served;
  for (const auto& r : router::routes())
    served.insert(std::string(boost::beast::http::to_string(r.method)) + " " +
                  std::string(r.pattern));
  CHECK(api.operations() == served);
}

TEST_CASE("the contract's schemas accept the server's shapes and reject others") {
  test::openapi_contract api;
  auto accepted = boost::json::parse(
      R"({"id":"01a20186-a36f-7fa4-aba8-185e529e034e","state":"queued","links":{"self":"/v1/jobs/01a20186-a36f-7fa4-aba8-185e529e034e"}})");
  CHECK(api.violations("Accepted", accepted).empty());
  accepted.as_object()["state"] = "running";
  CHECK_FALSE(api.violations("Accepted", accepted).empty());

  auto p = make_problem(400, "payload_invalid", "bad", "/payload/x");
  CHECK(api.violations("Problem", p.to_json()).empty());
  CHECK_FALSE(api.violations("Problem", boost::json::parse(R"({"title":"x"})")).empty());
}

TEST_CASE("a replay may be in any state, and idempotency_key_reused is a documented code") {
  test::openapi_contract api;
  auto replayed = boost::json::parse(
      R"({"id":"01a20186-a36f-7fa4-aba8-185e529e034e","state":"succeeded","links":{"self":"/v1/jobs/01a20186-a36f-7fa4-aba8-185e529e034e"}})");
  CHECK(api.violations("Replayed", replayed).empty());
  replayed.as_object()["state"] = "done";
  CHECK_FALSE(api.violations("Replayed", replayed).empty());
  auto p = make_problem(409, "idempotency_key_reused", "another request");
  CHECK(api.violations("Problem", p.to_json()).empty());
}

TEST_CASE("every documented problem code has a title of its own, not the fallback") {
  // operator_only once came back titled "Error".
  test::openapi_contract api;
  auto doc = boost::json::parse(test::file_text(JOBS_SOURCE_DIR "/schemas/openapi.json"));
  const auto& codes = doc.at_pointer("/components/schemas/Problem/properties/code/enum").as_array();
  CHECK(codes.size() > 30);
  for (const auto& c : codes) {
    std::string code(c.as_string());
    CAPTURE(code);
    auto p = make_problem(400, code, "detail");
    CHECK(p.title != "Error");
    CHECK(api.violations("Problem", p.to_json()).empty());
  }
}

TEST_CASE("every /v1 operation documents what the layers before its route may answer") {
  // The key (401), the rate limits (429) and the database (503) stand before
  // every /v1 route; a body may be too large (413) or not JSON (415). Once,
  // the webhook endpoints' 429 and a job's 503 went undocumented.
  auto doc = boost::json::parse(test::file_text(JOBS_SOURCE_DIR "/schemas/openapi.json"));
  int checked = 0;
  for (const auto& [path, ops] : doc.at("paths").as_object()) {
    if (!std::string_view(path).starts_with("/v1/")) continue;
    for (const auto& [method, op] : ops.as_object()) {
      if (!op.is_object() || !op.as_object().contains("responses")) continue;
      std::vector<std::string> need{"401", "429", "503"};
      if (op.as_object().contains("requestBody")) need.insert(need.end(), {"413", "415"});
      for (const auto& code : need) {
        CAPTURE(path);
        CAPTURE(method);
        CAPTURE(code);
        CHECK(op.at("responses").as_object().contains(code));
      }
      ++checked;
    }
  }
  CHECK(checked >= 20);
}
