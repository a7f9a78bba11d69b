// The pure parts of common/idempotency.hpp: what a key is, and the request
// fingerprint (also through parse_submission in test/api/submission_test.cpp).
#include "common/idempotency.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

using namespace jobs;

TEST_CASE("is_valid_idempotency_key") {
  CHECK(is_valid_idempotency_key("a"));
  CHECK(is_valid_idempotency_key(std::string(255, '~')));
  CHECK(is_valid_idempotency_key(" "));
  CHECK_FALSE(is_valid_idempotency_key(""));
  CHECK_FALSE(is_valid_idempotency_key(std::string(256, 'a')));
  CHECK_FALSE(is_valid_idempotency_key("a\nb"));
  CHECK_FALSE(is_valid_idempotency_key("\x7f"));
  CHECK_FALSE(is_valid_idempotency_key("\xc3\xa9"));
}

TEST_CASE("request_hash is hex SHA-256 of the canonical form") {
  new_job j;
  j.queue = "processing";
  j.type = "noop";
  auto h = request_hash(j, boost::json::parse(R"({"b":1,"a":[true,null,"x"]})"), "");
  // sha256 of ["processing","noop",{"a":[true,null,"x"],"b":1},0,5,0,0,0,"",null]
  CHECK(h == "1f98837e16fef1c38da9b803c9e29aadffd601911aeed5c679a0212abea22d41");
}
