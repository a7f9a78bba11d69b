// The broker address list (JOBS_AMQP_URL with a cluster's nodes).
#include "queues/brokers.hpp"
#include "common/log.hpp"

#include <doctest/doctest.h>

using namespace jobs;

TEST_CASE("one URL is a list of one node") {
  auto v = parse_amqp_urls("amqp://u:p@mq:5673/vh");
  REQUIRE(v.size() == 1);
  CHECK(v[0].host == "mq");
  CHECK(v[0].port == 5673);
  CHECK(v[0].user == "u");
  CHECK(v[0].password == "p");
  CHECK(v[0].vhost == "vh");
}

TEST_CASE("a list of full URLs and host:port shorthands") {
  auto v = parse_amqp_urls("amqp://u:p@mq-0:5672/vh, amqp://x:y@mq-1:5700/ ,mq-2:5701,mq-3");
  REQUIRE(v.size() == 4);
  CHECK(v[1].host == "mq-1");
  CHECK(v[1].user == "x");
  CHECK(v[1].vhost == "/");
  // Shorthands take the first entry's credentials and vhost.
  CHECK(v[2].host == "mq-2");
  CHECK(v[2].port == 5701);
  CHECK(v[2].user == "u");
  CHECK(v[2].password == "p");
  CHECK(v[2].vhost == "vh");
  CHECK(v[3].host == "mq-3");
  CHECK(v[3].port == 5672);
}

TEST_CASE("malformed lists are refused") {
  CHECK_THROWS_AS(parse_amqp_urls(""), amqp_error);
  CHECK_THROWS_AS(parse_amqp_urls("amqp://mq-0/,"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_urls("amqp://mq-0/,,mq-1"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_urls("mq-0:5672"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_urls("amqp://mq-0/,u:p@mq-1"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_urls("amqp://mq-0/,http://mq-1/"), amqp_error);
  CHECK_THROWS_AS(broker_list("amqp://mq-0/,mq-1/vh"), amqp_error);
}

TEST_CASE("connect() goes round the nodes and fails naming each") {
  // Nothing listens on port 1 of loopback: both nodes refuse at once.
  broker_list b("amqp://127.0.0.1:1/,127.0.0.2:1");
  CHECK(b.size() == 2);
  try {
    b.connect(30);
    FAIL("connected to nothing");
  } catch (const amqp_error& e) {
    std::string what = e.what();
    CHECK(what.find("127.0.0.1:1") != std::string::npos);
    CHECK(what.find("127.0.0.2:1") != std::string::npos);
  }
}

TEST_CASE("every password of a list is redacted in logs") {
  CHECK(redact_url("amqp://u:secret@a:1/,amqp://v:other@b:2/,c:3") ==
        "amqp://u:***@a:1/,amqp://v:***@b:2/,c:3");
}
