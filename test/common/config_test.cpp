// Unit tests of configuration from the environment (common/config.hpp).
#include "common/config.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>

namespace {

using env_map = std::map<std::string, std::string>;
using namespace std::chrono_literals;

// The message of the config_error that load_config throws for `env`, or a
// failed check when it does not throw one.
std::string error_for(const env_map& env) {
  try {
    jobs::load_config(env);
  } catch (const jobs::config_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw something other than config_error: " << e.what());
  }
  FAIL("load_config did not throw");
  return {};
}

void check_refused(const std::string& name, const std::string& value) {
  CAPTURE(name);
  CAPTURE(value);
  auto what = error_for({{name, value}});
  CHECK(what.find(name) != std::string::npos);
}

}  // namespace

TEST_CASE("load_config with an empty environment gives the documented defaults") {
  auto c = jobs::load_config({});
  CHECK(c.pg_url == "postgresql://jobs@127.0.0.1:5542/jobs");
  CHECK(c.amqp_url == "amqp://guest:guest@127.0.0.1:5782/");
  CHECK(c.schema_dir == std::string(JOBS_SOURCE_DIR) + "/schemas");
  CHECK(c.http_addr == "127.0.0.1");
  CHECK(c.http_port == 8780);
  CHECK(c.http_threads == 2);
  CHECK(c.http_body_limit == 1048576);
  CHECK(c.http_header_limit == 16384);
  CHECK(c.http_read_timeout == 30000ms);
  CHECK(c.http_max_connections == 4096);
  CHECK(c.json_max_depth == 32);
  CHECK(c.pg_pool_size == 4);
  CHECK(c.submit_batch_max == 1000);
  CHECK(c.submit_commit_gap == 3ms);
  CHECK(c.publish_timeout == 10000ms);
  CHECK(c.scheduler_interval == 200ms);
  CHECK(c.amqp_heartbeat_s == 30);
  CHECK(c.queue_delivery_limit == 10);
  CHECK(c.worker_queue == "processing");
  CHECK(c.worker_concurrency == 8);
  CHECK(c.worker_prefetch == 16);  // 2 x concurrency
  CHECK(c.worker_lease == 60000ms);
  CHECK(c.worker_shutdown == 30000ms);
  CHECK(c.worker_job_timeout == 300000ms);
  CHECK(c.worker_cancel_grace == 5000ms);
  CHECK(c.auth_cache == 5000ms);
  CHECK(c.log_level == "info");
}

TEST_CASE("text settings are applied") {
  auto c = jobs::load_config({
      {"JOBS_PG_URL", "postgresql://u:secret@db:5432/x"},
      {"JOBS_AMQP_URL", "amqp://u:p@mq:5672/vh"},
      {"JOBS_SCHEMA_DIR", "/etc/jobs/schemas"},
      {"JOBS_HTTP_ADDR", "0.0.0.0"},
      {"JOBS_WORKER_QUEUE", "email"},
  });
  CHECK(c.pg_url == "postgresql://u:secret@db:5432/x");
  CHECK(c.amqp_url == "amqp://u:p@mq:5672/vh");
  CHECK(c.schema_dir == "/etc/jobs/schemas");
  CHECK(c.http_addr == "0.0.0.0");
  CHECK(c.worker_queue == "email");
  // Untouched settings keep their defaults.
  CHECK(c.http_port == 8780);
}

TEST_CASE("integer settings are applied") {
  auto c = jobs::load_config({
      {"JOBS_HTTP_PORT", "9000"},
      {"JOBS_HTTP_THREADS", "4"},
      {"JOBS_HTTP_BODY_LIMIT", "2048"},
      {"JOBS_HTTP_HEADER_LIMIT", "4096"},
      {"JOBS_HTTP_MAX_CONNECTIONS", "10"},
      {"JOBS_JSON_MAX_DEPTH", "8"},
      {"JOBS_PG_POOL_SIZE", "7"},
      {"JOBS_SUBMIT_BATCH_MAX", "50"},
      {"JOBS_AMQP_HEARTBEAT_S", "15"},
      {"JOBS_QUEUE_DELIVERY_LIMIT", "3"},
      {"JOBS_WORKER_CONCURRENCY", "5"},
      {"JOBS_WORKER_PREFETCH", "11"},
  });
  CHECK(c.http_port == 9000);
  CHECK(c.http_threads == 4);
  CHECK(c.http_body_limit == 2048);
  CHECK(c.http_header_limit == 4096);
  CHECK(c.http_max_connections == 10);
  CHECK(c.json_max_depth == 8);
  CHECK(c.pg_pool_size == 7);
  CHECK(c.submit_batch_max == 50);
  CHECK(c.amqp_heartbeat_s == 15);
  CHECK(c.queue_delivery_limit == 3);
  CHECK(c.worker_concurrency == 5);
  CHECK(c.worker_prefetch == 11);  // explicit, not 2 x 5
}

TEST_CASE("millisecond settings are applied") {
  auto c = jobs::load_config({
      {"JOBS_HTTP_READ_TIMEOUT_MS", "1500"},
      {"JOBS_PUBLISH_TIMEOUT_MS", "2500"},
      {"JOBS_SCHEDULER_INTERVAL_MS", "50"},
      {"JOBS_WORKER_LEASE_MS", "120000"},
      {"JOBS_WORKER_SHUTDOWN_MS", "0"},
      {"JOBS_AUTH_CACHE_MS", "250"},
      {"JOBS_WORKER_JOB_TIMEOUT_MS", "1000"},
      {"JOBS_WORKER_CANCEL_GRACE_MS", "0"},
      {"JOBS_SUBMIT_COMMIT_GAP_MS", "0"},
  });
  CHECK(c.submit_commit_gap == 0ms);
  CHECK(c.http_read_timeout == 1500ms);
  CHECK(c.publish_timeout == 2500ms);
  CHECK(c.scheduler_interval == 50ms);
  CHECK(c.worker_lease == 120000ms);
  CHECK(c.worker_shutdown == 0ms);
  CHECK(c.auth_cache == 250ms);
  CHECK(c.worker_job_timeout == 1000ms);
  CHECK(c.worker_cancel_grace == 0ms);
}

TEST_CASE("worker_prefetch defaults to twice the configured concurrency") {
  CHECK(jobs::load_config({{"JOBS_WORKER_CONCURRENCY", "3"}}).worker_prefetch == 6);
  CHECK(jobs::load_config({{"JOBS_WORKER_CONCURRENCY", "1"}}).worker_prefetch == 2);
  // 0 means "the default" too.
  auto c = jobs::load_config({{"JOBS_WORKER_CONCURRENCY", "4"}, {"JOBS_WORKER_PREFETCH", "0"}});
  CHECK(c.worker_prefetch == 8);
}

TEST_CASE("the edges of a range are accepted") {
  CHECK(jobs::load_config({{"JOBS_HTTP_PORT", "0"}}).http_port == 0);  // port 0: any free port
  CHECK(jobs::load_config({{"JOBS_HTTP_PORT", "65535"}}).http_port == 65535);
}

TEST_CASE("out-of-range integers throw config_error naming the variable") {
  check_refused("JOBS_HTTP_PORT", "65536");
  check_refused("JOBS_HTTP_PORT", "-1");
  check_refused("JOBS_HTTP_THREADS", "0");
  check_refused("JOBS_PG_POOL_SIZE", "0");
  check_refused("JOBS_WORKER_CONCURRENCY", "0");
  check_refused("JOBS_WORKER_PREFETCH", "-2");
  check_refused("JOBS_HTTP_BODY_LIMIT", "99999999999999999999");  // beyond long
  check_refused("JOBS_WORKER_LEASE_MS", "-1");
  check_refused("JOBS_HTTP_READ_TIMEOUT_MS", "0");
  check_refused("JOBS_WORKER_JOB_TIMEOUT_MS", "0");
  check_refused("JOBS_WORKER_JOB_TIMEOUT_MS", "86400001");
  check_refused("JOBS_WORKER_CANCEL_GRACE_MS", "-1");
}

TEST_CASE("non-numeric integers and durations throw config_error naming the variable") {
  for (std::string value : {"abc", "", "12x", "1.5", " 12", "12 ", "0x10", "1e3", "+"}) {
    check_refused("JOBS_HTTP_PORT", value);
    check_refused("JOBS_WORKER_LEASE_MS", value);
  }
}

TEST_CASE("an empty text setting throws config_error naming the variable") {
  check_refused("JOBS_PG_URL", "");
  check_refused("JOBS_WORKER_QUEUE", "");
}

TEST_CASE("a listener's address must be an IP address") {
  for (std::string value : {"", "not-an-ip", "localhost", "127.0.0.1:8780", "256.0.0.1"}) {
    check_refused("JOBS_HTTP_ADDR", value);
    check_refused("JOBS_METRICS_ADDR", value);
  }
  CHECK(error_for({{"JOBS_HTTP_ADDR", "not-an-ip"}}).find("expected an IP address") !=
        std::string::npos);
  auto c = jobs::load_config({{"JOBS_HTTP_ADDR", "::1"}, {"JOBS_METRICS_ADDR", "127.0.0.1"}});
  CHECK(c.http_addr == "::1");
  CHECK(c.metrics_addr == "127.0.0.1");
}

TEST_CASE("JOBS_SUPERVISOR_POOLS is read as the supervisor reads it") {
  for (std::string value :
       {"processing=4..1", "nope=1..2", "processing=1..2,foo=1", "processing=1..2,backlog=0",
        "processing=1..2;processing=1..3", "processing", ";"})
    check_refused("JOBS_SUPERVISOR_POOLS", value);
  CHECK(error_for({{"JOBS_SUPERVISOR_POOLS", "processing=4..1"}}) ==
        R"(JOBS_SUPERVISOR_POOLS="processing=4..1": processing: min is over max)");
  auto c = jobs::load_config({{"JOBS_SUPERVISOR_POOLS", "processing=0..8,backlog=20;email=1..1"}});
  CHECK(c.supervisor_pools == "processing=0..8,backlog=20;email=1..1");
}

TEST_CASE("an unknown JOBS_ variable throws config_error naming it") {
  check_refused("JOBS_HTTP_PROT", "8780");       // a typo of JOBS_HTTP_PORT
  check_refused("JOBS_WORKER_PREFETCH_X", "1");  // a known name plus a suffix
  check_refused("JOBS_", "x");
  // Also among valid settings: one bad key spoils the lot.
  auto what = error_for({{"JOBS_HTTP_PORT", "9000"}, {"JOBS_LOGLEVEL", "debug"}});
  CHECK(what.find("JOBS_LOGLEVEL") != std::string::npos);
}

TEST_CASE("variables outside JOBS_ and JOBS_TEST_* ones are ignored") {
  auto c = jobs::load_config({
      {"PATH", "/usr/bin"},
      {"HOME", "/root"},
      {"HTTP_PORT", "not a number"},
      {"XJOBS_HTTP_PORT", "1"},
      {"JOBS_TEST_ANYTHING", "whatever"},
      {"JOBS_TEST_PG_URL", ""},
  });
  CHECK(c.http_port == 8780);
  CHECK(c.pg_url == "postgresql://jobs@127.0.0.1:5542/jobs");
}

TEST_CASE("JOBS_LOG_LEVEL takes debug, info, warn or error only") {
  for (std::string level : {"debug", "info", "warn", "error"}) {
    CAPTURE(level);
    CHECK(jobs::load_config({{"JOBS_LOG_LEVEL", level}}).log_level == level);
  }
  for (std::string level : {"verbose", "warning", "INFO", "trace", " info", ""}) {
    check_refused("JOBS_LOG_LEVEL", level);
  }
}

TEST_CASE("JOBS_IDEMPOTENCY_TTL_MS: 24 h by default, 1 ms to a year") {
  CHECK(jobs::load_config({}).idempotency_ttl == 86400000ms);
  CHECK(jobs::load_config({{"JOBS_IDEMPOTENCY_TTL_MS", "1500"}}).idempotency_ttl == 1500ms);
  CHECK(jobs::load_config({{"JOBS_IDEMPOTENCY_TTL_MS", "31536000000"}}).idempotency_ttl ==
        31536000000ms);
  check_refused("JOBS_IDEMPOTENCY_TTL_MS", "0");
  check_refused("JOBS_IDEMPOTENCY_TTL_MS", "31536000001");
  check_refused("JOBS_IDEMPOTENCY_TTL_MS", "1d");
}

TEST_CASE("email settings: defaults, values, and refusals") {
  auto d = jobs::load_config({});
  CHECK(d.smtp_host.empty());
  CHECK(d.smtp_port == 0);
  CHECK(d.smtp_tls == "starttls");
  CHECK(d.smtp_verify);
  CHECK(d.smtp_connect_timeout == 10000ms);
  CHECK(d.smtp_timeout == 60000ms);
  CHECK(d.smtp_max_connections == 8);
  CHECK(d.email_domain_rate == 20);
  CHECK(d.email_max_attachment_bytes == 10u << 20);

  auto c = jobs::load_config({{"JOBS_SMTP_HOST", "email-smtp.us-east-1.amazonaws.com"},
                              {"JOBS_SMTP_PORT", "2587"},
                              {"JOBS_SMTP_TLS", "implicit"},
                              {"JOBS_SMTP_VERIFY", "off"},
                              {"JOBS_SMTP_USER", "AKIA"},
                              {"JOBS_SMTP_PASSWORD", "pw"},
                              {"JOBS_SMTP_MAX_CONNECTIONS", "3"},
                              {"JOBS_EMAIL_DOMAIN_RATE", "0"},
                              {"JOBS_EMAIL_MESSAGE_ID_DOMAIN", "mail.example.com"}});
  CHECK(c.smtp_host == "email-smtp.us-east-1.amazonaws.com");
  CHECK(c.smtp_port == 2587);
  CHECK(c.smtp_tls == "implicit");
  CHECK_FALSE(c.smtp_verify);
  CHECK(c.smtp_password == "pw");
  CHECK(c.smtp_max_connections == 3);
  CHECK(c.email_domain_rate == 0);
  CHECK(c.email_message_id_domain == "mail.example.com");

  check_refused("JOBS_SMTP_TLS", "tls");
  check_refused("JOBS_SMTP_VERIFY", "yes");
  check_refused("JOBS_SMTP_PORT", "0");
  check_refused("JOBS_SMTP_MAX_CONNECTIONS", "0");
  check_refused("JOBS_EMAIL_DOMAIN_RATE", "-1");
  check_refused("JOBS_SMTP_PASSWORD_FILE", "/nonexistent/secret");
  CHECK(error_for({{"JOBS_SMTP_PASSWORD", "a"}, {"JOBS_SMTP_PASSWORD_FILE", "/dev/null"}})
            .find("not both") != std::string::npos);
  CHECK(error_for({{"JOBS_SMTP_TYPO", "x"}}).find("JOBS_SMTP_TYPO") != std::string::npos);
}

TEST_CASE("the async in-flight limit and the webhook settings") {
  auto d = jobs::load_config({});
  CHECK(d.worker_async_inflight == 256);
  CHECK(d.webhook_allow.empty());
  CHECK(d.webhook_timeout == 15000ms);
  CHECK(d.webhook_connect_timeout == 5000ms);
  CHECK(d.webhook_response_limit == 65536);
  CHECK(d.webhook_breaker_failures == 20);
  CHECK(d.webhook_breaker_cooldown == 60000ms);
  auto c = jobs::load_config({{"JOBS_WORKER_ASYNC_INFLIGHT", "300"},
                              {"JOBS_WEBHOOK_ALLOW", "127.0.0.1/32,hooks.internal"},
                              {"JOBS_WEBHOOK_CA_FILE", "/tmp/ca.pem"},
                              {"JOBS_WEBHOOK_TIMEOUT_MS", "2000"},
                              {"JOBS_WEBHOOK_IDLE_PER_ORIGIN", "0"},
                              {"JOBS_WEBHOOK_BREAKER_FAILURES", "3"},
                              {"JOBS_WEBHOOK_BREAKER_COOLDOWN_MS", "1000"}});
  CHECK(c.worker_async_inflight == 300);
  CHECK(c.webhook_allow == "127.0.0.1/32,hooks.internal");
  CHECK(c.webhook_ca_file == "/tmp/ca.pem");
  CHECK(c.webhook_timeout == 2000ms);
  CHECK(c.webhook_idle_per_origin == 0);
  CHECK(c.webhook_breaker_failures == 3);
  CHECK(c.webhook_breaker_cooldown == 1000ms);
  check_refused("JOBS_WORKER_ASYNC_INFLIGHT", "0");
  check_refused("JOBS_WEBHOOK_TIMEOUT_MS", "60001");
  check_refused("JOBS_WEBHOOK_RESPONSE_LIMIT", "100");
  check_refused("JOBS_WEBHOOK_BREAKER_FAILURES", "0");
}

TEST_CASE("hostile-input limits: defaults, values and ranges") {
  auto d = jobs::load_config({});
  CHECK(d.http_max_headers == 100);
  CHECK(d.http_url_limit == 8192);
  CHECK(d.http_idle_timeout == 30000ms);
  CHECK(d.http_header_timeout == 10000ms);
  CHECK(d.http_max_connections_per_ip == 256);
  CHECK(d.json_max_string == 1u << 20);
  CHECK(d.json_max_array == 10000u);
  CHECK(d.http_tls_cert.empty());
  auto c = jobs::load_config({{"JOBS_HTTP_MAX_HEADERS", "20"},
                              {"JOBS_HTTP_URL_LIMIT", "1024"},
                              {"JOBS_HTTP_IDLE_TIMEOUT_MS", "500"},
                              {"JOBS_HTTP_HEADER_TIMEOUT_MS", "700"},
                              {"JOBS_HTTP_MAX_CONNECTIONS_PER_IP", "3"},
                              {"JOBS_JSON_MAX_STRING", "300"},
                              {"JOBS_JSON_MAX_ARRAY", "50"}});
  CHECK(c.http_max_headers == 20);
  CHECK(c.http_url_limit == 1024u);
  CHECK(c.http_idle_timeout == 500ms);
  CHECK(c.http_header_timeout == 700ms);
  CHECK(c.http_max_connections_per_ip == 3);
  CHECK(c.json_max_string == 300u);
  CHECK(c.json_max_array == 50u);
  check_refused("JOBS_HTTP_MAX_HEADERS", "0");
  check_refused("JOBS_HTTP_URL_LIMIT", "10");
  check_refused("JOBS_HTTP_HEADER_TIMEOUT_MS", "0");
  check_refused("JOBS_HTTP_MAX_CONNECTIONS_PER_IP", "0");
  check_refused("JOBS_JSON_MAX_STRING", "-1");
  check_refused("JOBS_JSON_MAX_ARRAY", "1");
}

TEST_CASE("the URL limit stays below the header limit, whose block holds the request line") {
  // Unset, it follows a lowered header limit down; set, it must be below it
  // (a longer target would get 431 header_too_large, never 414 url_too_long).
  CHECK(jobs::load_config({{"JOBS_HTTP_HEADER_LIMIT", "4096"}}).http_url_limit == 2048u);
  CHECK(jobs::load_config({{"JOBS_HTTP_HEADER_LIMIT", "65536"}}).http_url_limit == 8192u);
  CHECK(jobs::load_config({{"JOBS_HTTP_HEADER_LIMIT", "4096"}, {"JOBS_HTTP_URL_LIMIT", "3000"}})
            .http_url_limit == 3000u);
  try {
    jobs::load_config({{"JOBS_HTTP_HEADER_LIMIT", "4096"}, {"JOBS_HTTP_URL_LIMIT", "8192"}});
    FAIL("a URL limit over the header limit was taken");
  } catch (const jobs::config_error& e) {
    CHECK(std::string(e.what()).starts_with(
        "JOBS_HTTP_URL_LIMIT (8192) must be below JOBS_HTTP_HEADER_LIMIT (4096)"));
  }
}

TEST_CASE("the body budget holds at least one body of the larger limit") {
  CHECK(jobs::load_config({}).http_body_budget == 256u << 20);
  CHECK(jobs::load_config({{"JOBS_HTTP_BODY_BUDGET", "16777216"}}).http_body_budget == 16u << 20);
  try {
    jobs::load_config({{"JOBS_HTTP_BODY_BUDGET", "8388608"}});
    FAIL("a budget under the batch body limit was taken");
  } catch (const jobs::config_error& e) {
    CHECK(std::string(e.what()).starts_with(
        "JOBS_HTTP_BODY_BUDGET (8388608) must be at least the larger of JOBS_HTTP_BODY_LIMIT and "
        "JOBS_HTTP_BATCH_BODY_LIMIT (16777216)"));
  }
  CHECK(jobs::load_config(
            {{"JOBS_HTTP_BODY_BUDGET", "2097152"}, {"JOBS_HTTP_BATCH_BODY_LIMIT", "1048576"}})
            .http_body_budget == 2u << 20);
  // Unset, it follows a larger limit up.
  CHECK(jobs::load_config({{"JOBS_HTTP_BATCH_BODY_LIMIT", "536870912"}}).http_body_budget ==
        512u << 20);
}

TEST_CASE("HTTPS needs both a readable certificate and key") {
  CHECK_THROWS_AS(jobs::load_config({{"JOBS_HTTP_TLS_CERT", "/etc/hostname"}}), jobs::config_error);
  CHECK_THROWS_AS(jobs::load_config({{"JOBS_HTTP_TLS_CERT", "/nonexistent/cert.pem"},
                                     {"JOBS_HTTP_TLS_KEY", "/nonexistent/key.pem"}}),
                  jobs::config_error);
  auto c = jobs::load_config(
      {{"JOBS_HTTP_TLS_CERT", "/etc/hostname"}, {"JOBS_HTTP_TLS_KEY", "/etc/hostname"}});
  CHECK(c.http_tls_cert == "/etc/hostname");
}
