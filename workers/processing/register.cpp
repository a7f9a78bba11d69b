#include "workers/handler.hpp"
#include "workers/processing/processing.hpp"

namespace jobs {

void register_processing_handlers(handler_registry& r) {
  r.add("processing", "noop", processing::noop_handler);
  r.add("processing", "hash", processing::hash_handler);
  r.add("processing", "csv.aggregate", processing::csv_aggregate_handler);
}

}  // namespace jobs
