// TLS and secrets settings for the backends, without servers: amqps:// URLs,
// PostgreSQL conninfo defaults, the *_FILE variants of the URLs.
// ctest-labels: security
#include "common/config.hpp"
#include "common/db.hpp"
#include "common/tenant_caps.hpp"
#include "queues/amqp.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using namespace jobs;

TEST_CASE("amqps:// URLs turn TLS on with verification, and take RabbitMQ's TLS parameters") {
  auto plain = parse_amqp_url("amqp://u:p@mq:5672/v");
  CHECK_FALSE(plain.tls);
  auto a = parse_amqp_url("amqps://u:p@mq.example.com/v");
  CHECK(a.tls);
  CHECK(a.verify);
  CHECK(a.port == 5671);
  CHECK(a.host == "mq.example.com");
  CHECK(a.ca_file.empty());
  auto b = parse_amqp_url(
      "amqps://u:p@mq:5999/v?cacertfile=/etc/ca%20dir/ca.pem&certfile=/c.pem&keyfile=/k.pem");
  CHECK(b.port == 5999);
  CHECK(b.ca_file == "/etc/ca dir/ca.pem");
  CHECK(b.cert_file == "/c.pem");
  CHECK(b.key_file == "/k.pem");
  CHECK_FALSE(parse_amqp_url("amqps://mq/?verify=verify_none").verify);
  CHECK(parse_amqp_url("amqps://mq/?verify=verify_peer").verify);
  CHECK_THROWS_AS(parse_amqp_url("amqps://mq/?verify=no"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_url("amqps://mq/?cacert=/x"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_url("amqps://mq/?certfile=/c.pem"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_url("amqp://mq/?cacertfile=/x"), amqp_error);
  CHECK_THROWS_AS(parse_amqp_url("http://mq/"), amqp_error);
}

TEST_CASE("a broker CA file that cannot be read fails before any connection") {
  auto a = parse_amqp_url("amqps://127.0.0.1:1/?cacertfile=/nonexistent/ca.pem");
  try {
    amqp_connection c(a, 0);
    FAIL("connected");
  } catch (const amqp_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/ca.pem") != std::string::npos);
  }
}

TEST_CASE("pg_conninfo verifies fully when a root certificate is named, and bounds the connect") {
  const std::string uri_tail =
      "connect_timeout=10&keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3"
      "&tcp_user_timeout=30000";
  CHECK(pg_conninfo("postgresql://jobs@db/jobs") == "postgresql://jobs@db/jobs?" + uri_tail);
  CHECK(pg_conninfo("postgresql://jobs@db/jobs?sslrootcert=/ca.pem") ==
        "postgresql://jobs@db/jobs?sslrootcert=/ca.pem&sslmode=verify-full&" + uri_tail);
  // An explicit mode, timeout or keepalive setting is kept.
  CHECK(pg_conninfo("postgresql://db/j?sslrootcert=/ca.pem&sslmode=verify-ca&connect_timeout=3"
                    "&keepalives_idle=60&tcp_user_timeout=0") ==
        "postgresql://db/j?sslrootcert=/ca.pem&sslmode=verify-ca&connect_timeout=3"
        "&keepalives_idle=60&tcp_user_timeout=0");
  CHECK(pg_conninfo("host=db sslrootcert=/ca.pem") ==
        "host=db sslrootcert=/ca.pem sslmode=verify-full connect_timeout=10 keepalives=1 "
        "keepalives_idle=10 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000");
  CHECK_THROWS_AS(pg_conninfo("postgresql://db/j?nosuchoption=1"), std::invalid_argument);
}

TEST_CASE("the broker and database URLs may come from files, never both ways") {
  std::string path = "/tmp/jobs-url-" + std::to_string(::getpid());
  std::ofstream(path) << "amqps://u:secret@mq/v\n";
  auto c = load_config({{"JOBS_AMQP_URL_FILE", path}, {"JOBS_PG_URL_FILE", path}});
  CHECK(c.amqp_url == "amqps://u:secret@mq/v");
  CHECK(c.pg_url == "amqps://u:secret@mq/v");
  CHECK_THROWS_AS(load_config({{"JOBS_AMQP_URL_FILE", "/nonexistent"}}), config_error);
  CHECK_THROWS_AS(load_config({{"JOBS_PG_URL", "x"}, {"JOBS_PG_URL_FILE", path}}), config_error);
  std::remove(path.c_str());
}

TEST_CASE("tenant caps: off by default, set from the environment") {
  auto d = load_config({});
  CHECK(d.tenant_max_running == 0);
  CHECK_FALSE(tenant_caps{d.tenant_max_running, d.tenant_defer}.enabled());
  auto c = load_config({{"JOBS_TENANT_MAX_RUNNING", "16"}, {"JOBS_TENANT_DEFER_MS", "250"}});
  CHECK(c.tenant_max_running == 16);
  CHECK(c.tenant_defer == std::chrono::milliseconds(250));
  CHECK_THROWS_AS(load_config({{"JOBS_TENANT_MAX_RUNNING", "-1"}}), config_error);
  CHECK_THROWS_AS(load_config({{"JOBS_TENANT_DEFER_MS", "0"}}), config_error);
}

TEST_CASE("redact_pg_url hides a password in every form libpq takes one") {
  using jobs::redact_pg_url;
  // Without a password: as given.
  CHECK(redact_pg_url("postgresql://jobs@db:5432/jobs?sslmode=require") ==
        "postgresql://jobs@db:5432/jobs?sslmode=require");
  CHECK(redact_pg_url("host=db dbname=passwords user=jobs") ==
        "host=db dbname=passwords user=jobs");
  for (std::string url :
       {"postgresql://jobs:s3cret@db:5432/jobs", "postgresql://jobs@db/jobs?password=s3cret",
        "postgresql://jobs@db/jobs?%70assword=s3cret", "postgresql://jobs:s3%2Ccret@db/jobs",
        "host=db user=jobs password=s3cret&more dbname=jobs",
        "host=db user=jobs password = 's3cret and more' dbname=jobs",
        "host=db\npassword=s3cret\ndbname=jobs", "host=db sslpassword=s3cret dbname=jobs",
        "postgresql://jobs@db/jobs?sslpassword=s3cret"}) {
    CAPTURE(url);
    auto shown = redact_pg_url(url);
    CHECK(shown.find("s3") == std::string::npos);
    CHECK(shown.find("=***") != std::string::npos);
    CHECK(shown.find("host=db") != std::string::npos);
  }
  CHECK(redact_pg_url("host='unterminated password=s3cret") == "(a malformed PostgreSQL URL)");
}
