#include "workers/webhooks/endpoints.hpp"

#include "common/log.hpp"
#include "common/time.hpp"
#include "common/webhook_signature.hpp"

namespace jobs::webhooks {

namespace {
constexpr const char* find_sql =
    "SELECT secrets, retry_schedule_ms, consecutive_failures, "
    "       extract(epoch FROM paused_until)::float8 "
    "FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2";

constexpr const char* failure_sql =
    "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, "
    "  paused_until = CASE WHEN consecutive_failures + 1 >= $3 "
    "    THEN now() + make_interval(secs => $4::float8 / 1000) ELSE paused_until END, "
    "  updated_at = now() "
    "WHERE tenant_id = $1 AND name = $2";

constexpr const char* reset_sql =
    "UPDATE webhook_endpoints SET consecutive_failures = 0, paused_until = NULL, "
    "  updated_at = now() "
    "WHERE tenant_id = $1 AND name = $2 "
    "  AND (consecutive_failures <> 0 OR paused_until IS NOT NULL)";

// A PostgreSQL array of integers or texts as text: {a,b}.
std::vector<std::string> array_items(const pqxx::field& f) {
  std::vector<std::string> out;
  if (f.is_null()) return out;
  auto p = f.as_array();
  for (auto [kind, value] = p.get_next(); kind != pqxx::array_parser::juncture::done;
       std::tie(kind, value) = p.get_next())
    if (kind == pqxx::array_parser::juncture::string_value) out.push_back(value);
  return out;
}
}  // namespace

endpoint_store::endpoint_store(std::string pg_url, int threshold,
                               std::chrono::milliseconds cooldown,
                               std::chrono::milliseconds cache_ttl)
    : url_(std::move(pg_url)),
      threshold_(threshold),
      cooldown_(cooldown),
      ttl_(cache_ttl),
      writer_(url_, 1) {}

std::optional<endpoint> endpoint_store::find(const std::string& tenant, const std::string& name) {
  std::lock_guard lk(mu_);
  auto now = std::chrono::steady_clock::now();
  auto key = std::pair{tenant, name};
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (now < it->second.until) return it->second.ep;
    cache_.erase(it);
  }
  auto row = with_reconnect(conn_, url_, [&](pqxx::connection& c) {
    pqxx::nontransaction n(c);
    return n.exec_params(find_sql, tenant, name);
  });
  std::optional<endpoint> ep;
  if (!row.empty()) {
    ep.emplace();
    for (const auto& s : array_items(row[0][0]))
      if (auto k = decode_secret(s)) ep->keys.push_back(*k);
    auto gaps = array_items(row[0][1]);
    if (!gaps.empty()) {
      ep->schedule.emplace();
      for (const auto& g : gaps) ep->schedule->gaps.emplace_back(std::stoll(g));
    }
    ep->consecutive_failures = row[0][2].as<int>();
    if (!row[0][3].is_null()) {
      auto secs = row[0][3].as<double>();
      ep->paused_until = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::duration<double>(secs)));
    }
  }
  // Only endpoints found are kept: a miss must come from PostgreSQL just
  // now, or an endpoint created a moment ago would fail the jobs meant for it.
  if (ep) cache_[key] = {*ep, now + ttl_};
  return ep;
}

void endpoint_store::record_failure(const std::string& tenant, const std::string& name) {
  {
    std::lock_guard lk(mu_);
    cache_.erase({tenant, name});
  }
  writer_.post([this, tenant, name](pqxx::connection* c) {
    if (!c) return;
    try {
      pqxx::work tx(*c);
      tx.exec_params(failure_sql, tenant, name, threshold_, static_cast<double>(cooldown_.count()));
      tx.commit();
    } catch (const std::exception& e) {
      log_warn("cannot record a webhook endpoint failure", {{"error", e.what()}});
    }
    std::lock_guard lk(mu_);
    cache_.erase({tenant, name});
  });
}

void endpoint_store::reset(pqxx::transaction_base& tx, const std::string& tenant,
                           const std::string& name) {
  tx.exec_params(reset_sql, tenant, name);
}

}  // namespace jobs::webhooks
