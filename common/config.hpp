#pragma once
// Configuration of every daemon, from environment variables.
//
// Each setting is a `JOBS_*` variable with a default (table below and in the
// README). Start-up fails on a malformed value or on an unknown `JOBS_*`
// variable, so a typo never silently falls back to a default. Secrets (the
// passwords inside JOBS_PG_URL / JOBS_AMQP_URL) come from the environment,
// never from a committed file.
//
//   JOBS_PG_URL                  postgresql://jobs@127.0.0.1:5542/jobs
//   JOBS_AMQP_URL                amqp://guest:guest@127.0.0.1:5782/ ; or a comma-separated list
//                                of a cluster's nodes (queues/brokers.hpp), tried in turn
//   JOBS_SCHEMA_DIR              <source>/schemas (jobs/ and migrations/ inside)
//   JOBS_HTTP_ADDR               127.0.0.1
//   JOBS_HTTP_PORT               8780
//   JOBS_HTTP_THREADS            2
//   JOBS_HTTP_BODY_LIMIT         1048576 bytes
//   JOBS_HTTP_BATCH_BODY_LIMIT   16777216 bytes (POST /v1/jobs/batch)
//   JOBS_HTTP_BATCH_MAX_JOBS     1000 jobs per batch request
//   JOBS_RATE_KEY_PER_S          10000 requests (a batch: jobs) per second per API key; 0: off
//   JOBS_RATE_KEY_BURST          20000
//   JOBS_RATE_TENANT_PER_S       20000 per tenant, all its keys together; 0: off
//   JOBS_RATE_TENANT_BURST       40000
//   JOBS_HTTP_HEADER_LIMIT       16384 bytes
//   JOBS_HTTP_READ_TIMEOUT_MS    30000 (a request's body, from the end of its headers)
//   JOBS_HTTP_IDLE_TIMEOUT_MS    30000 (a connection waiting for a request's first byte)
//   JOBS_HTTP_HEADER_TIMEOUT_MS  10000 (a request's headers, from its first byte)
//   JOBS_HTTP_MAX_HEADERS        100 header fields per request
//   JOBS_HTTP_URL_LIMIT          8192 bytes of request target (below the header limit;
//                                unset, at most half of it)
//   JOBS_HTTP_MAX_CONNECTIONS    4096
//   JOBS_HTTP_MAX_CONNECTIONS_PER_IP 256 open connections from one client address
//   JOBS_HTTP_TLS_CERT           empty: plain HTTP; a PEM certificate chain file: HTTPS
//   JOBS_HTTP_TLS_KEY            the PEM private key of JOBS_HTTP_TLS_CERT
//   JOBS_JSON_MAX_DEPTH          32
//   JOBS_JSON_MAX_STRING         1048576 bytes per string or member name in a body
//   JOBS_JSON_MAX_ARRAY          10000 elements per array in a body
//   JOBS_PG_POOL_SIZE            4 connections for reads
//   JOBS_PG_CALL_TIMEOUT_MS      30000 (the API's other calls wait this long for an answer)
//   JOBS_SUBMIT_BATCH_MAX        1000 jobs per group commit
//   JOBS_PUBLISH_TIMEOUT_MS      10000 (broker confirm deadline)
//   JOBS_SUBMIT_COMMIT_TIMEOUT_MS 10000 (a submission's group commit deadline)
//   JOBS_SUBMIT_COMMIT_GAP_MS    3 (while the machine's cores are 75 % busy, a small group
//                                commit begins no sooner than this after the last; 0: never waits)
//   JOBS_SCHEDULER_INTERVAL_MS   200
//   JOBS_AMQP_HEARTBEAT_S        30
//   JOBS_QUEUE_DELIVERY_LIMIT    10 deliveries before a message is dead-lettered
//   JOBS_DEAD_LETTER_MAX         100000 messages jobs.dead keeps (the newest)
//   JOBS_WORKER_QUEUE            processing
//   JOBS_WORKER_CONCURRENCY      8 handler threads
//   JOBS_WORKER_PREFETCH         2 x concurrency (a worker with async handlers raises it
//                                to concurrency + JOBS_WORKER_ASYNC_INFLIGHT)
//   JOBS_WORKER_LEASE_MS         60000
//   JOBS_WORKER_SHUTDOWN_MS      30000 (drain deadline on SIGTERM)
//   JOBS_WORKER_JOB_TIMEOUT_MS   300000 (a job's execution timeout unless it sets timeout_ms)
//   JOBS_WORKER_CANCEL_GRACE_MS  5000 (how long a stopped handler may take to return)
//   JOBS_WORKER_ASYNC_INFLIGHT   256 jobs of async handlers (webhooks) in flight per worker
//   JOBS_WORKER_ROUND_GAP_MS     4 (while the machine's cores are 75 % busy, a small round
//                                starts no sooner than this after the last; 0: never waits)
//   JOBS_WEBHOOK_ALLOW           empty; comma list of CIDRs and host names exempt from the
//                                SSRF rules (e.g. 127.0.0.1/32,hooks.internal)
//   JOBS_WEBHOOK_CA_FILE         empty; a PEM file of CAs trusted besides the system's
//   JOBS_WEBHOOK_TIMEOUT_MS      15000 (a delivery's total deadline unless it sets timeout_ms)
//   JOBS_WEBHOOK_CONNECT_TIMEOUT_MS  5000 (resolve + connect + TLS handshake)
//   JOBS_WEBHOOK_RESPONSE_LIMIT  65536 bytes of a response body read (4 KiB of it stored)
//   JOBS_WEBHOOK_IDLE_PER_ORIGIN 16 keep-alive connections kept per origin
//   JOBS_WEBHOOK_BREAKER_FAILURES 20 consecutive failures that pause an endpoint
//   JOBS_WEBHOOK_BREAKER_COOLDOWN_MS 60000 (how long a paused endpoint waits)
//   JOBS_AUTH_CACHE_MS           5000
//   JOBS_IDEMPOTENCY_TTL_MS      86400000 (24 h: how long an Idempotency-Key names its job)
//   JOBS_LOG_LEVEL               info (debug, info, warn, error)
//   JOBS_ADMIN_DIR               <source>/api/admin (the dashboard's files, served at /admin/)
//   JOBS_ADMIN_BROKER_UI_URL     empty; RabbitMQ's management UI, linked from the dashboard
//   JOBS_METRICS_FINAL_COUNT_S   60: the API's /metrics recounts jobs in final states (a scan
//                                of the jobs table) at most this often; 0: at every scrape
//
// The supervisor (workers/supervisor/supervisor.hpp) and GET /v1/queues:
//   JOBS_SUPERVISOR_POOLS        processing=1..4;email=1..2;webhooks=1..2 (common/scaling.hpp)
//   JOBS_SUPERVISOR_TARGET_BACKLOG   16 ready + unacked messages per worker
//   JOBS_SUPERVISOR_TARGET_DRAIN_S   0 (off): scale so the backlog drains in this time
//   JOBS_SUPERVISOR_MAX_WAIT_S   0 (off): add a worker while the oldest job waited longer
//   JOBS_SUPERVISOR_SCALE_UP_COOLDOWN_MS    10000 between scale-ups of a pool
//   JOBS_SUPERVISOR_SCALE_DOWN_COOLDOWN_MS  60000 after any change before a scale-down
//   JOBS_SUPERVISOR_INTERVAL_MS  2000 (how often the signal is read)
//   JOBS_SUPERVISOR_RESTART_BACKOFF_MS  1000 first restart delay of a dead worker
//                                (doubling per death in a row, up to 60 s)
//   JOBS_SUPERVISOR_WORKER_BIN   empty: jobs-worker beside jobs-supervisor
//   JOBS_SUPERVISOR_METRICS_PORT 0 (off): the supervisor serves GET /metrics here
//                                (workers/supervisor/supervisor_metrics.hpp)
//
// The email worker's relay (workers/email/email.hpp):
//   JOBS_SMTP_HOST               empty: no relay, email jobs fail (retryable) saying so
//   JOBS_SMTP_PORT               587, or 465 with JOBS_SMTP_TLS=implicit
//   JOBS_SMTP_TLS                starttls (required), starttls-optional, off, implicit
//   JOBS_SMTP_VERIFY             on (certificate and host name); off for tests only
//   JOBS_SMTP_CA_FILE            empty: the system's trust store
//   JOBS_SMTP_USER               empty: no AUTH (credentials need starttls or implicit)
//   JOBS_SMTP_PASSWORD           empty; or JOBS_SMTP_PASSWORD_FILE, a file holding it
//   JOBS_SMTP_CONNECT_TIMEOUT_MS 10000 (TCP and TLS)
//   JOBS_SMTP_TIMEOUT_MS         60000 (one whole send)
//   JOBS_SMTP_MAX_CONNECTIONS    8 connections to the relay per worker process
//   JOBS_EMAIL_DOMAIN_RATE       20 messages per second per recipient domain (0: off)
//   JOBS_EMAIL_MAX_ATTACHMENT_BYTES  10485760 (decoded, all of a message's attachments)
//   JOBS_EMAIL_MESSAGE_ID_DOMAIN empty: the sender's domain
//
// For the platform's own tests only, never in production:
//   JOBS_TEST_HANDLERS           off; on registers workers/testing.hpp's handlers
//   JOBS_TEST_FAULT              empty; a fault-injection point, e.g.
//                                worker_crash_after_commit, api_crash_after_commit:N,
//                                api_commit_reply_lost:N
//
// Thread-safety: a value; load once in main and pass down.

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

namespace jobs {

struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct config {
  std::string pg_url = "postgresql://jobs@127.0.0.1:5542/jobs";
  std::string amqp_url = "amqp://guest:guest@127.0.0.1:5782/";
  std::string schema_dir;
  std::string http_addr = "127.0.0.1";
  int http_port = 8780;
  int http_threads = 2;
  std::size_t http_body_limit = 1 << 20;
  std::size_t http_batch_body_limit = 16 << 20;
  std::size_t http_body_budget = 256 << 20;  ///< request bodies held at once, all connections
  int http_batch_max_jobs = 1000;
  int rate_key_per_s = 10000;
  int rate_key_burst = 20000;
  int rate_tenant_per_s = 20000;
  int rate_tenant_burst = 40000;
  std::size_t http_header_limit = 16 << 10;
  std::chrono::milliseconds http_read_timeout{30000};
  int http_max_connections = 4096;
  int json_max_depth = 32;
  std::size_t json_max_string = 1 << 20;
  std::size_t json_max_array = 10000;
  int http_max_headers = 100;
  std::size_t http_url_limit = 8192;
  std::chrono::milliseconds http_idle_timeout{30000};
  std::chrono::milliseconds http_header_timeout{10000};
  int http_max_connections_per_ip = 256;
  std::string http_tls_cert;
  std::string http_tls_key;
  int pg_pool_size = 4;
  std::chrono::milliseconds pg_call_timeout{30000};
  int submit_batch_max = 1000;
  std::chrono::milliseconds publish_timeout{10000};
  std::chrono::milliseconds submit_commit_timeout{10000};
  std::chrono::milliseconds submit_commit_gap{3};
  std::chrono::milliseconds scheduler_interval{200};
  int amqp_heartbeat_s = 30;
  int queue_delivery_limit = 10;
  long dead_letter_max = 100000;
  std::string worker_queue = "processing";
  int worker_concurrency = 8;
  int worker_prefetch = 0;  ///< 0: twice the concurrency
  std::chrono::milliseconds worker_lease{60000};
  std::chrono::milliseconds worker_shutdown{30000};
  std::chrono::milliseconds worker_job_timeout{300000};
  std::chrono::milliseconds worker_cancel_grace{5000};
  int worker_async_inflight = 256;
  std::chrono::milliseconds worker_round_gap{4};
  int tenant_max_running = 0;  ///< 0: no per-tenant caps (common/tenant_caps.hpp)
  std::chrono::milliseconds tenant_defer{1000};
  std::string webhook_allow;
  std::string webhook_ca_file;
  std::chrono::milliseconds webhook_timeout{15000};
  std::chrono::milliseconds webhook_connect_timeout{5000};
  std::size_t webhook_response_limit = 64 << 10;
  int webhook_idle_per_origin = 16;
  int webhook_breaker_failures = 20;
  std::chrono::milliseconds webhook_breaker_cooldown{60000};
  std::chrono::milliseconds auth_cache{5000};
  std::chrono::milliseconds idempotency_ttl{86400000};
  long retain_succeeded_s = 7 * 86400;  ///< 0: finished jobs in this state are kept for ever
  long retain_cancelled_s = 7 * 86400;
  long retain_dead_s = 30 * 86400;
  std::string log_level = "info";
  std::string admin_dir;
  std::string admin_broker_ui_url;
  /// Tenants whose keys see and act on platform-wide queue figures (depths,
  /// history, pause/resume); empty: every tenant's (a one-organisation install).
  std::string operator_tenants;
  std::string metrics_token;             ///< set: /metrics needs `Authorization: Bearer <it>`
  int metrics_final_count_s = 60;        ///< api_metrics::final_every
  std::string metrics_addr = "0.0.0.0";  ///< the worker's (and supervisor's) /metrics listener
  int worker_metrics_port = 0;           ///< 0: the worker serves no /metrics
  int supervisor_metrics_port = 0;       ///< 0: the supervisor serves no /metrics
  std::string supervisor_pools = "processing=1..4;email=1..2;webhooks=1..2";
  int supervisor_target_backlog = 16;
  int supervisor_target_drain_s = 0;
  int supervisor_max_wait_s = 0;
  std::chrono::milliseconds supervisor_scale_up_cooldown{10000};
  std::chrono::milliseconds supervisor_scale_down_cooldown{60000};
  std::chrono::milliseconds supervisor_interval{2000};
  std::chrono::milliseconds supervisor_restart_backoff{1000};
  std::string supervisor_worker_bin;
  bool test_handlers = false;
  std::string test_fault;
  // email worker
  std::string smtp_host;
  int smtp_port = 0;  ///< 0: 587, or 465 for implicit TLS
  std::string smtp_tls = "starttls";
  bool smtp_verify = true;
  std::string smtp_ca_file;
  std::string smtp_user;
  std::string smtp_password;  ///< from JOBS_SMTP_PASSWORD or JOBS_SMTP_PASSWORD_FILE
  std::chrono::milliseconds smtp_connect_timeout{10000};
  std::chrono::milliseconds smtp_timeout{60000};
  int smtp_max_connections = 8;
  int email_domain_rate = 20;
  std::size_t email_max_attachment_bytes = 10 << 20;
  std::string email_message_id_domain;
};

/// Reads `JOBS_*` from `env` (name -> value) over the defaults.
/// Throws config_error naming the variable on a bad or unknown one.
config load_config(const std::map<std::string, std::string>& env);

/// The process environment as a map, for load_config.
std::map<std::string, std::string> process_environment();

}  // namespace jobs
