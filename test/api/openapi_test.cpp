// The OpenAPI document is the contract: it documents exactly the routes the
// router serves, and its schemas accept what the server sends.
#include "support/openapi.hpp"
#include "api/router.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

#include <fstream>
#include <sstream>

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
  std::ifstream in(JOBS_SOURCE_DIR "/schemas/openapi.json");
  std::stringstream text;
  text << in.rdbuf();
  auto doc = boost::json::parse(text.str());
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
