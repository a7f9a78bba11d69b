#pragma once
// PostgreSQL connection usage as metrics, the same names in every process:
//   jobs_db_pool_connections{pool}  connections the pool holds (its threads)
//   jobs_db_pool_in_use{pool}       of those, running a task now
//   jobs_db_pool_waiting{pool}      tasks queued for a free connection
//
// Thread-safety: as metrics::registry.

#include "common/db.hpp"
#include "common/metrics.hpp"

namespace jobs {

struct db_pool_gauges {
  explicit db_pool_gauges(metrics::registry& reg)
      : connections(reg.add_gauge("jobs_db_pool_connections",
                                  "PostgreSQL connections held by the pool", {"pool"})),
        in_use(reg.add_gauge("jobs_db_pool_in_use", "PostgreSQL connections running a task now",
                             {"pool"})),
        waiting(reg.add_gauge("jobs_db_pool_waiting",
                              "Database tasks waiting for a free connection", {"pool"})) {}
  void set(std::string_view pool, double held, double busy, double queued) {
    connections.with({pool}).set(held);
    in_use.with({pool}).set(busy);
    waiting.with({pool}).set(queued);
  }
  /// Reads `p` at every scrape.
  void watch(metrics::registry& reg, std::string pool, const db_pool& p) {
    reg.add_collector([this, pool = std::move(pool), &p] {
      set(pool, p.size(), p.in_use(), static_cast<double>(p.waiting()));
    });
  }

  metrics::family<metrics::gauge>& connections;
  metrics::family<metrics::gauge>& in_use;
  metrics::family<metrics::gauge>& waiting;
};

}  // namespace jobs
