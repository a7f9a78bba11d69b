#include "workers/settings.hpp"

#include "common/job.hpp"
#include "common/scaling.hpp"
#include "workers/email/email.hpp"
#include "workers/webhooks/address.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace jobs {

void check_worker_settings(const config& cfg, std::string_view queue) {
  if (!is_known_queue(queue))
    throw config_error(fmt::format("unknown queue {:?} (email, processing, webhooks)", queue));
  if (queue == "email") email_options_from(cfg);
  if (queue == "webhooks") {
    try {
      webhooks::allow_list::parse(cfg.webhook_allow);
    } catch (const std::invalid_argument& e) {
      throw config_error(fmt::format("JOBS_WEBHOOK_ALLOW: {}", e.what()));
    }
  }
}

void check_supervisor_settings(const config& cfg) {
  auto pools = parse_pools(cfg.supervisor_pools, policy_defaults(cfg));
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
