// ctest-labels: dashboard
// The Grafana dashboard and the Prometheus config in deploy/ parse, and every
// metric a panel queries is one the platform exports (or RabbitMQ's plugin,
// or Prometheus' own `up`), so panels cannot silently drift from the code.
#include "api/api_metrics.hpp"
#include "workers/worker_metrics.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace jobs;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The series names the platform exports: each family, and a histogram's
// _bucket, _sum and _count.
std::set<std::string> exported() {
  metrics::registry reg;
  api_metrics api(reg);
  metrics::registry wreg;
  worker_metrics worker(wreg);
  std::set<std::string> out;
  for (auto* r : {&reg, &wreg})
    for (const auto& n : r->names())
      for (const char* suffix : {"", "_bucket", "_sum", "_count"}) out.insert(n + suffix);
  return out;
}

}  // namespace

TEST_CASE("every metric the Grafana dashboard queries is exported") {
  auto dash = boost::json::parse(
      slurp(std::string(JOBS_SOURCE_DIR) + "/deploy/grafana/dashboards/jobs.json"));
  auto names = exported();
  // Identifiers in PromQL that are not metric names.
  static const std::set<std::string> promql{"sum",    "by",       "rate",   "histogram_quantile",
                                            "max",    "min",      "avg",    "increase",
                                            "count",  "without",  "on",     "ignoring",
                                            "le",     "queue",    "route",  "state",
                                            "status", "pool",     "method", "type",
                                            "job",    "instance", "and",    "or",
                                            "unless", "action"};
  static const std::regex ident("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex strings("\"[^\"]*\"|\\[[^\\]]*\\]");
  int panels = 0, exprs = 0;
  std::set<std::string> used;
  for (const auto& p : dash.at("panels").as_array()) {
    ++panels;
    CHECK(p.as_object().contains("title"));
    for (const auto& t : p.at("targets").as_array()) {
      std::string expr(t.at("expr").as_string());
      ++exprs;
      // Drop label values and range durations, then look at every identifier.
      auto bare = std::regex_replace(expr, strings, " ");
      for (std::sregex_iterator it(bare.begin(), bare.end(), ident), end; it != end; ++it) {
        auto id = it->str();
        if (promql.contains(id) || std::isdigit(static_cast<unsigned char>(id[0]))) continue;
        used.insert(id);
        bool known = names.contains(id) || id.starts_with("rabbitmq_") || id == "up";
        CHECK_MESSAGE(known, "panel \"", p.at("title").as_string().c_str(), "\" queries ", id,
                      ", which nothing exports");
      }
    }
  }
  CHECK(panels >= 8);
  CHECK(exprs >= panels);
  // The headline metrics are on the dashboard.
  for (const char* m : {"jobs_submitted_total", "jobs_completed_total", "jobs_queue_depth",
                        "jobs_http_request_duration_seconds_bucket",
                        "jobs_attempt_duration_seconds_bucket", "jobs_queue_oldest_age_seconds"})
    CHECK_MESSAGE(used.contains(m), m, " is on no panel");
}

TEST_CASE("Grafana provisioning and the Prometheus scrape config name the right places") {
  std::string src = JOBS_SOURCE_DIR;
  auto prom = slurp(src + "/deploy/prometheus/prometheus.yml");
  for (const char* target : {"api-1:8780", "rabbitmq:15692", "port: 9464", "worker-processing"})
    CHECK_MESSAGE(prom.find(target) != std::string::npos, "prometheus.yml lacks ", target);
  auto ds = slurp(src + "/deploy/grafana/provisioning/datasources/prometheus.yaml");
  CHECK(ds.find("uid: prometheus") != std::string::npos);
  CHECK(ds.find("http://prometheus:9090") != std::string::npos);
  auto provider = slurp(src + "/deploy/grafana/provisioning/dashboards/jobs.yaml");
  CHECK(provider.find("/var/lib/grafana/dashboards") != std::string::npos);
  // Every panel reads the provisioned data source.
  auto dash = boost::json::parse(slurp(src + "/deploy/grafana/dashboards/jobs.json"));
  for (const auto& p : dash.at("panels").as_array())
    CHECK(p.at("datasource").at("uid") == "prometheus");
}
