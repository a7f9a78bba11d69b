// ctest-labels: webhooks
// The PUT /v1/webhook-endpoints/{name} body (api/webhook_endpoints.hpp).
#include "api/webhook_endpoints.hpp"

#include "common/webhook_signature.hpp"

#include <doctest/doctest.h>

using namespace jobs;

namespace {
const std::string good = "whsec_" + webhooks::base64_encode(std::string(32, 'k'));
const std::string other = "whsec_" + webhooks::base64_encode(std::string(32, 'o'));
problem refused(const std::string& body) {
  auto r = parse_webhook_endpoint(body);
  REQUIRE(std::holds_alternative<problem>(r));
  return std::get<problem>(r);
}
}  // namespace

TEST_CASE("an endpoint: one or two secrets and an optional schedule") {
  auto one =
      std::get<webhook_endpoint_spec>(parse_webhook_endpoint(R"({"secrets":[")" + good + R"("]})"));
  CHECK(one.secrets == std::vector<std::string>{good});
  CHECK_FALSE(one.retry_schedule_ms);
  auto two = std::get<webhook_endpoint_spec>(parse_webhook_endpoint(
      R"({"secrets":[")" + good + R"(",")" + other + R"("],"retry_schedule_ms":[0,1000,60000]})"));
  CHECK(two.secrets.size() == 2);
  CHECK(two.retry_schedule_ms == std::vector<long>{0, 1000, 60000});
  CHECK_FALSE(
      std::get<webhook_endpoint_spec>(
          parse_webhook_endpoint(R"({"secrets":[")" + good + R"("],"retry_schedule_ms":null})"))
          .retry_schedule_ms);
}

TEST_CASE("bad endpoint bodies are 400 with a pointer") {
  CHECK(refused("nope").code == "invalid_json");
  CHECK(refused("[]").code == "invalid_request");
  CHECK(refused("{}").pointer == "/secrets");
  CHECK(refused("{}").code == "missing_field");
  CHECK(refused(R"({"secrets":[]})").pointer == "/secrets");
  CHECK(refused(R"({"secrets":["a","b","c"]})").pointer == "/secrets");
  CHECK(refused(R"({"secrets":["whsec_short"]})").pointer == "/secrets/0");
  CHECK(refused(R"({"secrets":[")" + good + R"(", "plain"]})").pointer == "/secrets/1");
  auto twice = refused(R"({"secrets":[")" + good + R"(",")" + good + R"("]})");
  CHECK(twice.code == "invalid_field");
  CHECK(twice.pointer == "/secrets/1");
  CHECK(twice.detail.find("the same key") != std::string::npos);
  CHECK(refused(R"({"secrets":[")" + good + R"("],"retry_schedule_ms":[-1]})").pointer ==
        "/retry_schedule_ms/0");
  CHECK(refused(R"({"secrets":[")" + good + R"("],"retry_schedule_ms":[]})").pointer ==
        "/retry_schedule_ms");
  CHECK(refused(R"({"secrets":[")" + good + R"("],"extra":1})").code == "unknown_field");
  // A member's name is one RFC 6901 token, escaped.
  CHECK(refused(R"({"secrets":[")" + good + R"("],"a/b~":1})").pointer == "/a~1b~0");
}

TEST_CASE("endpoint names") {
  CHECK(is_endpoint_name("default"));
  CHECK(is_endpoint_name("billing.v2-eu_1"));
  CHECK_FALSE(is_endpoint_name(""));
  CHECK_FALSE(is_endpoint_name("a b"));
  CHECK_FALSE(is_endpoint_name(std::string(65, 'a')));
}
