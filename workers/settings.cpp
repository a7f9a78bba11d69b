#include "workers/settings.hpp"

#include "common/job.hpp"
#include "common/scaling.hpp"
#include "queues/brokers.hpp"
#include "workers/email/email.hpp"
#include "workers/webhooks/address.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace jobs {

namespace {
// A CA bundle as the HTTPS client and libcurl load it (PEM certificates).
void check_ca_file(std::string_view setting, const std::string& path) {
  if (path.empty()) return;
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
  boost::system::error_code ec;
  tls.load_verify_file(path, ec);
  if (ec) throw config_error(fmt::format("{}={:?}: {}", setting, path, ec.message()));
}
}  // namespace

void check_worker_settings(const config& cfg, std::string_view queue) {
  if (!is_known_queue(queue))
    throw config_error(fmt::format("unknown queue {:?} (email, processing, webhooks)", queue));
  try {
    check_amqp_tls_files(cfg.amqp_url);
  } catch (const std::exception& e) {
    throw config_error(fmt::format("JOBS_AMQP_URL: {}", e.what()));
  }
  if (queue == "email") {
    email_options_from(cfg);
    check_ca_file("JOBS_SMTP_CA_FILE", cfg.smtp_ca_file);
  }
  if (queue == "webhooks") {
    try {
      webhooks::allow_list::parse(cfg.webhook_allow);
    } catch (const std::invalid_argument& e) {
      throw config_error(fmt::format("JOBS_WEBHOOK_ALLOW: {}", e.what()));
    }
    check_ca_file("JOBS_WEBHOOK_CA_FILE", cfg.webhook_ca_file);
  }
}

std::string supervisor_worker_bin(const config& cfg) {
  if (!cfg.supervisor_worker_bin.empty()) return cfg.supervisor_worker_bin;
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "jobs-worker").string();
}

void check_supervisor_settings(const config& cfg) {
  auto pools = parse_pools(cfg.supervisor_pools, policy_defaults(cfg));
  if (auto bin = supervisor_worker_bin(cfg); ::access(bin.c_str(), X_OK) != 0)
    throw config_error(
        fmt::format("JOBS_SUPERVISOR_WORKER_BIN: {:?} is not an executable file", bin));
  int workers = 0;
  for (const auto& p : pools) {
    check_worker_settings(cfg, p.queue);
    workers += p.policy.max_workers;
  }
  if (cfg.worker_metrics_port <= 0 || workers == 0) return;
  const long first = cfg.worker_metrics_port, last = first + workers - 1;
  if (last > 65535)
    throw config_error(fmt::format(
        "JOBS_WORKER_METRICS_PORT={}: the pools' {} workers take the ports {} to {}, past 65535",
        first, workers, first, last));
  if (cfg.supervisor_metrics_port >= first && cfg.supervisor_metrics_port <= last)
    throw config_error(
        fmt::format("JOBS_SUPERVISOR_METRICS_PORT={} is among the workers' ports ({} to {}: "
                    "JOBS_WORKER_METRICS_PORT and up, one a worker): move one of them",
                    cfg.supervisor_metrics_port, first, last));
}

}  // namespace jobs
