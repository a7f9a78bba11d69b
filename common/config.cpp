#include "common/config.hpp"

#include "common/scaling.hpp"

#include <fmt/format.h>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>

extern char** environ;

namespace jobs {

namespace {

long parse_int(const std::string& name, const std::string& v, long lo, long hi) {
  long out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || p != v.data() + v.size() || out < lo || out > hi)
    throw config_error(fmt::format("{}={:?}: expected an integer in [{}, {}]", name, v, lo, hi));
  return out;
}

// Variables the scripts use for themselves (ports of local servers, test
// wiring); they may be in a daemon's environment and are not errors.
bool is_script_variable(const std::string& name) {
  static const std::set<std::string> names{"JOBS_API_PORT",     "JOBS_AMQP_PORT", "JOBS_MGMT_PORT",
                                           "JOBS_DIST_PORT",    "JOBS_PG_PORT",   "JOBS_BIN_DIR",
                                           "JOBS_SOURCE_DIR",   "JOBS_SANITIZE",  "JOBS_PROM_PORT",
                                           "JOBS_STOP_TIMEOUT", "JOBS_BUILD_DIR"};
  // jobsctl's settings (api/cli/cli.hpp), for a shell that runs both.
  if (name == "JOBS_URL" || name == "JOBS_API_KEY" || name == "JOBS_API_KEY_FILE") return true;
  return names.contains(name) || name.starts_with("JOBS_TEST_");
}

}  // namespace

config load_config(const std::map<std::string, std::string>& env) {
  config c;
  c.schema_dir = std::string(JOBS_SOURCE_DIR) + "/schemas";
  c.admin_dir = std::string(JOBS_SOURCE_DIR) + "/api/admin";
  using setter = std::function<void(const std::string&, const std::string&)>;
  auto ms = [](std::chrono::milliseconds& field, long lo, long hi) -> setter {
    return [&field, lo, hi](auto& n, auto& v) {
      field = std::chrono::milliseconds(parse_int(n, v, lo, hi));
    };
  };
  auto integer = [](auto& field, long lo, long hi) -> setter {
    return [&field, lo, hi](auto& n, auto& v) {
      field = static_cast<std::remove_reference_t<decltype(field)>>(parse_int(n, v, lo, hi));
    };
  };
  auto text = [](std::string& field) -> setter {
    return [&field](auto& n, auto& v) {
      if (v.empty()) throw config_error(n + " must not be empty");
      field = v;
    };
  };
  // Where a listener binds: an IP address, not a host name.
  auto address = [](std::string& field) -> setter {
    return [&field](auto& n, auto& v) {
      boost::system::error_code ec;
      boost::asio::ip::make_address(v, ec);
      if (ec)
        throw config_error(
            fmt::format("{}={:?}: expected an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::)", n, v));
      field = v;
    };
  };
  auto on_off = [](bool& field) -> setter {
    return [&field](auto& n, auto& v) {
      if (v != "on" && v != "off") throw config_error(n + " must be on or off");
      field = v == "on";
    };
  };
  // A secret's first line from a file (a mounted Kubernetes/Docker secret).
  auto from_file = [](std::string& field) -> setter {
    return [&field](auto& n, auto& v) {
      std::ifstream in(v);
      if (!in || !std::getline(in, field) || field.empty())
        throw config_error(n + ": cannot read a non-empty first line from " + v);
    };
  };
  const std::map<std::string, setter> table{
      {"JOBS_PG_URL", text(c.pg_url)},
      {"JOBS_PG_URL_FILE", from_file(c.pg_url)},
      {"JOBS_AMQP_URL", text(c.amqp_url)},
      {"JOBS_AMQP_URL_FILE", from_file(c.amqp_url)},
      {"JOBS_SCHEMA_DIR", text(c.schema_dir)},
      {"JOBS_HTTP_ADDR", address(c.http_addr)},
      {"JOBS_HTTP_PORT", integer(c.http_port, 0, 65535)},
      {"JOBS_HTTP_THREADS", integer(c.http_threads, 1, 64)},
      {"JOBS_HTTP_BODY_LIMIT", integer(c.http_body_limit, 1024, 1L << 30)},
      {"JOBS_HTTP_BATCH_BODY_LIMIT", integer(c.http_batch_body_limit, 1024, 1L << 30)},
      {"JOBS_HTTP_BODY_BUDGET", integer(c.http_body_budget, 1024, 1L << 40)},
      {"JOBS_HTTP_BATCH_MAX_JOBS", integer(c.http_batch_max_jobs, 1, 100000)},
      {"JOBS_RATE_KEY_PER_S", integer(c.rate_key_per_s, 0, 10000000)},
      {"JOBS_RATE_KEY_BURST", integer(c.rate_key_burst, 1, 10000000)},
      {"JOBS_RATE_TENANT_PER_S", integer(c.rate_tenant_per_s, 0, 10000000)},
      {"JOBS_RATE_TENANT_BURST", integer(c.rate_tenant_burst, 1, 10000000)},
      {"JOBS_HTTP_HEADER_LIMIT", integer(c.http_header_limit, 1024, 1L << 20)},
      {"JOBS_HTTP_READ_TIMEOUT_MS", ms(c.http_read_timeout, 100, 3600000)},
      {"JOBS_HTTP_MAX_CONNECTIONS", integer(c.http_max_connections, 1, 1000000)},
      {"JOBS_JSON_MAX_DEPTH", integer(c.json_max_depth, 2, 1000)},
      {"JOBS_JSON_MAX_STRING", integer(c.json_max_string, 256, 1L << 30)},
      {"JOBS_JSON_MAX_ARRAY", integer(c.json_max_array, 16, 10000000)},
      {"JOBS_HTTP_MAX_HEADERS", integer(c.http_max_headers, 8, 10000)},
      {"JOBS_HTTP_URL_LIMIT", integer(c.http_url_limit, 64, 1L << 20)},
      {"JOBS_HTTP_IDLE_TIMEOUT_MS", ms(c.http_idle_timeout, 100, 3600000)},
      {"JOBS_HTTP_HEADER_TIMEOUT_MS", ms(c.http_header_timeout, 100, 3600000)},
      {"JOBS_HTTP_MAX_CONNECTIONS_PER_IP", integer(c.http_max_connections_per_ip, 1, 1000000)},
      {"JOBS_HTTP_TLS_CERT", text(c.http_tls_cert)},
      {"JOBS_HTTP_TLS_KEY", text(c.http_tls_key)},
      {"JOBS_PG_POOL_SIZE", integer(c.pg_pool_size, 1, 256)},
      {"JOBS_PG_CALL_TIMEOUT_MS", ms(c.pg_call_timeout, 100, 3600000)},
      {"JOBS_SUBMIT_BATCH_MAX", integer(c.submit_batch_max, 1, 100000)},
      {"JOBS_PUBLISH_TIMEOUT_MS", ms(c.publish_timeout, 100, 600000)},
      {"JOBS_SUBMIT_COMMIT_TIMEOUT_MS", ms(c.submit_commit_timeout, 100, 600000)},
      {"JOBS_SUBMIT_COMMIT_GAP_MS", ms(c.submit_commit_gap, 0, 1000)},
      {"JOBS_SCHEDULER_INTERVAL_MS", ms(c.scheduler_interval, 10, 60000)},
      {"JOBS_AMQP_HEARTBEAT_S", integer(c.amqp_heartbeat_s, 0, 3600)},
      {"JOBS_QUEUE_DELIVERY_LIMIT", integer(c.queue_delivery_limit, 1, 1000)},
      {"JOBS_DEAD_LETTER_MAX", integer(c.dead_letter_max, 1, 100000000)},
      {"JOBS_WORKER_QUEUE", text(c.worker_queue)},
      {"JOBS_WORKER_CONCURRENCY", integer(c.worker_concurrency, 1, 4096)},
      {"JOBS_WORKER_PREFETCH", integer(c.worker_prefetch, 0, 65535)},
      {"JOBS_WORKER_LEASE_MS", ms(c.worker_lease, 1000, 86400000)},
      {"JOBS_WORKER_SHUTDOWN_MS", ms(c.worker_shutdown, 0, 86400000)},
      {"JOBS_WORKER_JOB_TIMEOUT_MS", ms(c.worker_job_timeout, 1, 86400000)},
      {"JOBS_WORKER_CANCEL_GRACE_MS", ms(c.worker_cancel_grace, 0, 3600000)},
      {"JOBS_WORKER_ASYNC_INFLIGHT", integer(c.worker_async_inflight, 1, 100000)},
      {"JOBS_WORKER_ROUND_GAP_MS", ms(c.worker_round_gap, 0, 1000)},
      {"JOBS_TENANT_MAX_RUNNING", integer(c.tenant_max_running, 0, 1000000)},
      {"JOBS_TENANT_DEFER_MS", ms(c.tenant_defer, 10, 600000)},
      {"JOBS_WEBHOOK_ALLOW", [&c](auto&, auto& v) { c.webhook_allow = v; }},
      {"JOBS_WEBHOOK_CA_FILE", [&c](auto&, auto& v) { c.webhook_ca_file = v; }},
      {"JOBS_WEBHOOK_TIMEOUT_MS", ms(c.webhook_timeout, 100, 60000)},
      {"JOBS_WEBHOOK_CONNECT_TIMEOUT_MS", ms(c.webhook_connect_timeout, 100, 60000)},
      {"JOBS_WEBHOOK_RESPONSE_LIMIT", integer(c.webhook_response_limit, 4096, 1L << 24)},
      {"JOBS_WEBHOOK_IDLE_PER_ORIGIN", integer(c.webhook_idle_per_origin, 0, 1024)},
      {"JOBS_WEBHOOK_BREAKER_FAILURES", integer(c.webhook_breaker_failures, 1, 1000000)},
      {"JOBS_WEBHOOK_BREAKER_COOLDOWN_MS", ms(c.webhook_breaker_cooldown, 100, 86400000)},
      {"JOBS_AUTH_CACHE_MS", ms(c.auth_cache, 0, 3600000)},
      {"JOBS_IDEMPOTENCY_TTL_MS", ms(c.idempotency_ttl, 1, 31536000000)},
      {"JOBS_RETAIN_SUCCEEDED_S", integer(c.retain_succeeded_s, 0, 315360000)},
      {"JOBS_RETAIN_CANCELLED_S", integer(c.retain_cancelled_s, 0, 315360000)},
      {"JOBS_RETAIN_DEAD_S", integer(c.retain_dead_s, 0, 315360000)},
      {"JOBS_LOG_LEVEL", text(c.log_level)},
      {"JOBS_ADMIN_DIR", text(c.admin_dir)},
      {"JOBS_OPERATOR_TENANTS", [&c](auto&, auto& v) { c.operator_tenants = v; }},
      {"JOBS_ADMIN_BROKER_UI_URL", [&c](auto&, auto& v) { c.admin_broker_ui_url = v; }},
      {"JOBS_METRICS_TOKEN", [&c](auto&, auto& v) { c.metrics_token = v; }},
      {"JOBS_METRICS_ADDR", address(c.metrics_addr)},
      {"JOBS_METRICS_FINAL_COUNT_S", integer(c.metrics_final_count_s, 0, 86400)},
      {"JOBS_WORKER_METRICS_PORT", integer(c.worker_metrics_port, 0, 65535)},
      {"JOBS_SUPERVISOR_METRICS_PORT", integer(c.supervisor_metrics_port, 0, 65535)},
      {"JOBS_SUPERVISOR_POOLS", text(c.supervisor_pools)},
      {"JOBS_SUPERVISOR_TARGET_BACKLOG", integer(c.supervisor_target_backlog, 1, 1000000)},
      {"JOBS_SUPERVISOR_TARGET_DRAIN_S", integer(c.supervisor_target_drain_s, 0, 86400)},
      {"JOBS_SUPERVISOR_MAX_WAIT_S", integer(c.supervisor_max_wait_s, 0, 86400)},
      {"JOBS_SUPERVISOR_SCALE_UP_COOLDOWN_MS", ms(c.supervisor_scale_up_cooldown, 0, 86400000)},
      {"JOBS_SUPERVISOR_SCALE_DOWN_COOLDOWN_MS", ms(c.supervisor_scale_down_cooldown, 0, 86400000)},
      {"JOBS_SUPERVISOR_INTERVAL_MS", ms(c.supervisor_interval, 50, 3600000)},
      {"JOBS_SUPERVISOR_RESTART_BACKOFF_MS", ms(c.supervisor_restart_backoff, 10, 3600000)},
      {"JOBS_SUPERVISOR_WORKER_BIN", text(c.supervisor_worker_bin)},
      {"JOBS_TEST_HANDLERS",
       [&c](auto& n, auto& v) {
         if (v != "on" && v != "off") throw config_error(n + " must be on or off");
         c.test_handlers = v == "on";
       }},
      {"JOBS_TEST_FAULT", [&c](auto&, auto& v) { c.test_fault = v; }},
      {"JOBS_SMTP_HOST", text(c.smtp_host)},
      {"JOBS_SMTP_PORT", integer(c.smtp_port, 1, 65535)},
      {"JOBS_SMTP_TLS",
       [&c](auto& n, auto& v) {
         static const std::set<std::string> modes{"starttls", "starttls-optional", "off",
                                                  "implicit"};
         if (!modes.contains(v))
           throw config_error(n + " must be starttls, starttls-optional, off or implicit");
         c.smtp_tls = v;
       }},
      {"JOBS_SMTP_VERIFY", on_off(c.smtp_verify)},
      {"JOBS_SMTP_CA_FILE", text(c.smtp_ca_file)},
      {"JOBS_SMTP_USER", text(c.smtp_user)},
      {"JOBS_SMTP_PASSWORD", [&c](auto&, auto& v) { c.smtp_password = v; }},
      {"JOBS_SMTP_PASSWORD_FILE",
       [&c](auto& n, auto& v) {
         std::ifstream in(v);
         if (!in) throw config_error(n + ": cannot read " + v);
         std::getline(in, c.smtp_password);
       }},
      {"JOBS_SMTP_CONNECT_TIMEOUT_MS", ms(c.smtp_connect_timeout, 100, 600000)},
      {"JOBS_SMTP_TIMEOUT_MS", ms(c.smtp_timeout, 100, 3600000)},
      {"JOBS_SMTP_MAX_CONNECTIONS", integer(c.smtp_max_connections, 1, 1024)},
      {"JOBS_EMAIL_DOMAIN_RATE", integer(c.email_domain_rate, 0, 100000)},
      {"JOBS_EMAIL_MAX_ATTACHMENT_BYTES", integer(c.email_max_attachment_bytes, 0, 1L << 30)},
      {"JOBS_EMAIL_MESSAGE_ID_DOMAIN", text(c.email_message_id_domain)},
  };
  for (const auto& [name, value] : env) {
    if (!name.starts_with("JOBS_")) continue;
    auto it = table.find(name);
    if (it == table.end()) {
      if (is_script_variable(name)) continue;
      throw config_error("unknown setting " + name);
    }
    it->second(name, value);
  }
  static const std::set<std::string> levels{"debug", "info", "warn", "error"};
  if (!levels.contains(c.log_level))
    throw config_error("JOBS_LOG_LEVEL must be one of debug, info, warn, error");
  for (const char* name : {"JOBS_SMTP_PASSWORD", "JOBS_PG_URL", "JOBS_AMQP_URL"})
    if (env.contains(name) && env.contains(std::string(name) + "_FILE"))
      throw config_error(fmt::format("set {0} or {0}_FILE, not both", name));
  // The request line is part of the header block: unset, the URL limit
  // stays below a lowered header limit; set, it must be.
  if (!env.contains("JOBS_HTTP_URL_LIMIT"))
    c.http_url_limit = std::min(c.http_url_limit, c.http_header_limit / 2);
  if (c.http_url_limit >= c.http_header_limit)
    throw config_error(fmt::format(
        "JOBS_HTTP_URL_LIMIT ({}) must be below JOBS_HTTP_HEADER_LIMIT ({}): the request line "
        "is part of the header block, so a longer target would get 431, never 414",
        c.http_url_limit, c.http_header_limit));
  // Unset, it grows with the limits; set, it must hold a body of each.
  if (auto largest = std::max(c.http_body_limit, c.http_batch_body_limit);
      !env.contains("JOBS_HTTP_BODY_BUDGET"))
    c.http_body_budget = std::max(c.http_body_budget, largest);
  else if (c.http_body_budget < largest)
    throw config_error(fmt::format(
        "JOBS_HTTP_BODY_BUDGET ({}) must be at least the larger of JOBS_HTTP_BODY_LIMIT and "
        "JOBS_HTTP_BATCH_BODY_LIMIT ({}): a body within its limit would never be read",
        c.http_body_budget, largest));
  if (c.http_tls_cert.empty() != c.http_tls_key.empty())
    throw config_error("set both JOBS_HTTP_TLS_CERT and JOBS_HTTP_TLS_KEY, or neither");
  for (const auto* f : {&c.http_tls_cert, &c.http_tls_key})
    if (!f->empty() && !std::ifstream(*f))
      throw config_error(fmt::format("cannot read the TLS file {}", *f));
  // Read as the supervisor will, so that check-config (and every daemon)
  // refuses a spec the supervisor would stop on.
  try {
    parse_pools(c.supervisor_pools, policy_defaults(c));
  } catch (const pools_error& e) {
    throw config_error(fmt::format("JOBS_SUPERVISOR_POOLS={:?}: {}", c.supervisor_pools, e.what()));
  }
  if (c.worker_prefetch == 0) c.worker_prefetch = 2 * c.worker_concurrency;
  return c;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

}  // namespace jobs
