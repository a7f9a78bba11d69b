// jobs-api: the HTTP front, and the platform's admin commands.
//   jobs-api                         serve (migrates first)
//   jobs-api migrate                 apply schemas/migrations and exit
//   jobs-api check-config            check the JOBS_* settings and exit
//   jobs-api create-key --tenant T [--name N] [--role admin|submitter|viewer]
//                                    print a new API key (shown once)
// Settings: JOBS_* environment variables (common/config.hpp).
#include "api/dead_letter_recovery.hpp"
#include "api/key_listener.hpp"
#include "api/periodic_task.hpp"
#include "api/platform.hpp"
#include "api/scheduler.hpp"
#include "api/server.hpp"
#include "common/admin_store.hpp"
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/retention.hpp"
#include "common/schema.hpp"
#include "common/signals.hpp"
#include "queues/brokers.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace {

using namespace jobs;

int migrate(const config& cfg) {
  auto c = pg_connect(cfg.pg_url);
  int n = apply_migrations(*c, cfg.schema_dir + "/migrations");
  log_info("database is up to date", {{"applied", n}});
  return 0;
}

// check-config: beyond load_config's checks, what serve() would stop on
// before it listens: the two URLs as the clients read them, and the schema
// directory (its migrations and job types, loaded as serve() loads them).
int check_config(const config& cfg) {
  try {
    pg_conninfo(cfg.pg_url);
  } catch (const std::invalid_argument& e) {
    throw config_error(fmt::format("JOBS_PG_URL: {}", e.what()));
  }
  try {
    check_amqp_tls_files(cfg.amqp_url);
  } catch (const std::exception& e) {
    throw config_error(fmt::format("JOBS_AMQP_URL: {}", e.what()));
  }
  if (!cfg.http_tls_cert.empty()) {
    try {
      check_server_tls(cfg.http_tls_cert, cfg.http_tls_key);
    } catch (const std::exception& e) {
      throw config_error(fmt::format("JOBS_HTTP_TLS_CERT / JOBS_HTTP_TLS_KEY: {}", e.what()));
    }
  }
  if (!std::filesystem::is_directory(cfg.schema_dir + "/migrations"))
    throw config_error(
        fmt::format("JOBS_SCHEMA_DIR={:?} has no migrations/ directory", cfg.schema_dir));
  try {
    schema_registry schemas(cfg.schema_dir + "/jobs");
  } catch (const std::exception& e) {
    throw config_error(fmt::format("JOBS_SCHEMA_DIR={:?}: {}", cfg.schema_dir, e.what()));
  }
  return 0;
}

int create_key(const config& cfg, int argc, char** argv) {
  constexpr const char* usage =
      "usage: jobs-api create-key --tenant NAME [--name LABEL] [--role admin|submitter|viewer]\n"
      "  roles: admin (the default) and submitter submit and read; viewer only reads;\n"
      "  admin keys also manage the tenant's keys\n";
  std::string tenant, name, role = "admin";
  for (int i = 2; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "create-key: " << flag << " needs a value\n" << usage;
      return 2;
    }
    if (flag == "--tenant")
      tenant = argv[i + 1];
    else if (flag == "--name")
      name = argv[i + 1];
    else if (flag == "--role")
      role = argv[i + 1];
    else {
      std::cerr << "create-key: unknown option " << flag << "\n" << usage;
      return 2;
    }
  }
  static const std::regex tenant_re("[A-Za-z0-9_.-]{1,64}");
  if (!std::regex_match(tenant, tenant_re)) {
    std::cerr << "create-key: --tenant must be 1 to 64 letters, digits, '_', '.' or '-'\n" << usage;
    return 2;
  }
  if (role != "admin" && role != "submitter" && role != "viewer") {
    std::cerr << "create-key: --role must be admin, submitter or viewer\n" << usage;
    return 2;
  }
  auto c = pg_connect(cfg.pg_url);
  std::cout << create_api_key(*c, tenant_id{tenant}, name, role) << "\n";
  return 0;
}

// "a, b,c" -> {a, b, c}
std::set<std::string> split_list(const std::string& list) {
  std::set<std::string> out;
  std::string item;
  std::istringstream in(list);
  while (std::getline(in, item, ',')) {
    auto first = item.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    out.insert(item.substr(first, item.find_last_not_of(' ') - first + 1));
  }
  return out;
}

int serve(const config& cfg) {
  // What would otherwise fail later, or be retried for ever (a broker's
  // unreadable CA file), stops the start instead.
  check_config(cfg);
  if (!split_list(cfg.operator_tenants).empty() && cfg.metrics_token.empty())
    log_warn(
        "JOBS_OPERATOR_TENANTS keeps queue figures to operators, but GET /metrics, which spans "
        "every tenant, needs no token: set JOBS_METRICS_TOKEN");
  if (!std::filesystem::is_directory(cfg.admin_dir))
    log_warn("JOBS_ADMIN_DIR is not a directory: the dashboard (/admin/) answers 404",
             {{"admin_dir", cfg.admin_dir}});
  block_stop_signals();
  migrate(cfg);
  schema_registry schemas(cfg.schema_dir + "/jobs");
  metrics::registry registry;
  api_metrics measures(registry);
  measures.know_job_types(schemas);
  measures.final_every = std::chrono::seconds(cfg.metrics_final_count_s);
  publisher pub({cfg.amqp_url,
                 cfg.amqp_heartbeat_s,
                 cfg.publish_timeout,
                 {cfg.queue_delivery_limit, cfg.dead_letter_max},
                 &measures.confirm_seconds,
                 &measures.unconfirmed});
  db_pool reads(cfg.pg_url, cfg.pg_pool_size);
  reads.set_call_deadline(cfg.pg_call_timeout);
  measures.pools.watch(registry, "api", reads);
  // A job whose confirm never came is republished after the confirm deadline
  // has surely passed.
  submitter writes(cfg.pg_url, pub, cfg.submit_batch_max,
                   cfg.publish_timeout + std::chrono::seconds(5), cfg.test_fault,
                   cfg.idempotency_ttl, &measures.commit_seconds, &measures.commit_jobs,
                   cfg.submit_commit_timeout, cfg.submit_commit_gap);
  periodic_task sched(cfg.pg_url, cfg.scheduler_interval, "scheduler round",
                      [&pub](pqxx::connection& c) {
                        // A full batch of any kind: more is due, go again at once.
                        return schedule_round(c, pub) >= scheduler_batch;
                      });
  dead_letter_recovery dead_letters(cfg.pg_url, cfg.amqp_url, cfg.amqp_heartbeat_s,
                                    {cfg.queue_delivery_limit, cfg.dead_letter_max}, pub,
                                    &measures.dead_letters);
  periodic_task history(cfg.pg_url, std::chrono::seconds(2), "queue history sample",
                        [](pqxx::connection& c) {
                          sample_queue_history(c);
                          return false;
                        });
  const retention_policy retention{.succeeded = std::chrono::seconds(cfg.retain_succeeded_s),
                                   .cancelled = std::chrono::seconds(cfg.retain_cancelled_s),
                                   .dead = std::chrono::seconds(cfg.retain_dead_s)};
  periodic_task pruner(cfg.pg_url, std::chrono::minutes(1), "pruning finished jobs",
                       [retention](pqxx::connection& c) {
                         if (long n = prune_finished_jobs(c, retention); n > 0)
                           log_info("finished jobs past their retention deleted", {{"jobs", n}});
                         return false;
                       });
  platform_backend backend(reads, writes, pub, cfg.auth_cache, cfg.submit_commit_timeout);
  backend.enable_queue_stats(cfg.amqp_url, policy_defaults(cfg));
  key_listener revocations(cfg.pg_url, [&backend] { backend.forget_keys(); });
  router routes(backend, schemas,
                {.limits = {.max_depth = cfg.json_max_depth,
                            .max_string = cfg.json_max_string,
                            .max_array = cfg.json_max_array},
                 .batch = {.max_jobs = cfg.http_batch_max_jobs},
                 .rates = {.key_per_second = static_cast<double>(cfg.rate_key_per_s),
                           .key_burst = static_cast<double>(cfg.rate_key_burst),
                           .tenant_per_second = static_cast<double>(cfg.rate_tenant_per_s),
                           .tenant_burst = static_cast<double>(cfg.rate_tenant_burst)},
                 .admin_dir = cfg.admin_dir,
                 .admin_broker_ui_url = cfg.admin_broker_ui_url,
                 .operator_tenants = split_list(cfg.operator_tenants),
                 .metrics = &measures,
                 .metrics_token = cfg.metrics_token});
  http_server server(
      {.address = cfg.http_addr,
       .port = cfg.http_port,
       .threads = cfg.http_threads,
       .body_limit = cfg.http_body_limit,
       .batch_body_limit = cfg.http_batch_body_limit,
       .header_limit = cfg.http_header_limit,
       .body_budget = cfg.http_body_budget,
       .head = {.url_limit = cfg.http_url_limit, .max_headers = cfg.http_max_headers},
       .idle_timeout = cfg.http_idle_timeout,
       .header_timeout = cfg.http_header_timeout,
       .read_timeout = cfg.http_read_timeout,
       .max_connections = cfg.http_max_connections,
       .max_connections_per_ip = cfg.http_max_connections_per_ip,
       .tls_cert_file = cfg.http_tls_cert,
       .tls_key_file = cfg.http_tls_key},
      routes);
  stop_signals stop([&] { server.stop(); });
  log_info("api listening", {{"address", cfg.http_addr},
                             {"port", server.port()},
                             {"tls", !cfg.http_tls_cert.empty()},
                             {"database", redact_pg_url(cfg.pg_url)},
                             {"broker", redact_url(cfg.amqp_url)}});
  server.run();
  log_info("api stopped");
  return 0;  // the rest stops in reverse order of construction
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = load_config(process_environment());
    set_log_level(cfg.log_level);
    std::string cmd = argc > 1 ? argv[1] : "serve";
    if (cmd == "serve") return serve(cfg);
    if (cmd == "migrate") return migrate(cfg);
    if (cmd == "check-config" && argc == 2) return check_config(cfg);
    if (cmd == "create-key") return create_key(cfg, argc, argv);
    std::cerr << "usage: jobs-api [serve | migrate | check-config | create-key --tenant NAME "
                 "[--name LABEL] [--role ROLE]]\n";
    return 2;
  } catch (const std::exception& e) {
    log_error("jobs-api failed", {{"error", e.what()}});
    return 1;
  }
}
