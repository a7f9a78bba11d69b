#pragma once
// The settings a worker reads beyond what load_config checks for every
// daemon (common/config.hpp): checked before anything starts, by the worker
// itself, by `jobs-worker [--queue NAME] check-config` and by the supervisor for each pool,
// so that a wrong one is said once instead of a worker exiting (or a
// supervisor restarting it) for ever.

#include "common/config.hpp"

#include <string>
#include <string_view>

namespace jobs {

/// Throws config_error saying what is wrong for a worker of `queue`: an
/// unknown queue; a TLS file of JOBS_AMQP_URL that cannot be read; for
/// email, the relay's settings (email_options_from); for webhooks,
/// JOBS_WEBHOOK_ALLOW and JOBS_WEBHOOK_CA_FILE (loaded as the client does).
void check_worker_settings(const config& cfg, std::string_view queue);

/// The supervisor's: each pool's worker settings, a worker binary it can
/// run, and with
/// JOBS_WORKER_METRICS_PORT the ports its workers get (the base + a slot,
/// one slot per worker up to the pools' maxima) within 65535 and clear of
/// JOBS_SUPERVISOR_METRICS_PORT.
void check_supervisor_settings(const config& cfg);

/// JOBS_SUPERVISOR_WORKER_BIN, or jobs-worker beside this process's binary.
std::string supervisor_worker_bin(const config& cfg);

}  // namespace jobs
