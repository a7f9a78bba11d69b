#include "common/idempotency.hpp"

#include <openssl/evp.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

namespace jobs {

namespace {

// The created_at test keeps them cheap: jobs_idempotency finds the rows by
// (tenant, key), jobs_idempotency_created (0004) the old ones for the sweep.
constexpr const char* release_expired_sql = R"(
  UPDATE jobs j SET idempotency_key = NULL, request_hash = NULL
  FROM jsonb_to_recordset($1::jsonb) AS k(tenant_id text, key text)
  WHERE j.tenant_id = k.tenant_id AND j.idempotency_key = k.key
    AND j.created_at < now() - $2 * interval '1 millisecond')";

constexpr const char* find_holders_sql = R"(
  SELECT j.id::text, j.tenant_id, j.idempotency_key, coalesce(j.request_hash, ''), j.state::text
  FROM jobs j JOIN jsonb_to_recordset($1::jsonb) AS k(tenant_id text, key text)
    ON j.tenant_id = k.tenant_id AND j.idempotency_key = k.key)";

constexpr const char* sweep_sql = R"(
  WITH old AS (
    SELECT id FROM jobs
    WHERE idempotency_key IS NOT NULL AND created_at < now() - $1 * interval '1 millisecond'
    ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
  )
  UPDATE jobs j SET idempotency_key = NULL, request_hash = NULL FROM old WHERE j.id = old.id)";

void append_canonical(std::string& out, const boost::json::value& v) {
  if (const auto* o = v.if_object()) {
    std::vector<const boost::json::key_value_pair*> members;
    members.reserve(o->size());
    for (const auto& kv : *o) members.push_back(&kv);
    std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
    out.push_back('{');
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i) out.push_back(',');
      out += boost::json::serialize(boost::json::string(members[i]->key()));
      out.push_back(':');
      append_canonical(out, members[i]->value());
    }
    out.push_back('}');
  } else if (const auto* a = v.if_array()) {
    out.push_back('[');
    for (std::size_t i = 0; i < a->size(); ++i) {
      if (i) out.push_back(',');
      append_canonical(out, (*a)[i]);
    }
    out.push_back(']');
  } else {
    out += boost::json::serialize(v);
  }
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 0xf]);
  }
  return out;
}

// [{"tenant_id":…,"key":…}] of the distinct keys of `jobs`, for jsonb_to_recordset.
std::string key_rows(std::span<const new_job> jobs) {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  boost::json::array rows;
  for (const auto& j : jobs) {
    if (j.idempotency_key.empty() || !seen.emplace(j.tenant.value, j.idempotency_key).second)
      continue;
    rows.push_back(boost::json::object{{"tenant_id", j.tenant.value}, {"key", j.idempotency_key}});
  }
  return rows.empty() ? std::string() : boost::json::serialize(rows);
}

}  // namespace

bool is_valid_idempotency_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > idempotency_limits::max_key_length) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string request_hash(const new_job& job, const boost::json::value& payload,
                         std::string_view run_at) {
  std::string form = "[";
  form += boost::json::serialize(boost::json::string(job.queue));
  form += ',' + boost::json::serialize(boost::json::string(job.type)) + ',';
  append_canonical(form, payload);
  form += ',' + std::to_string(job.priority) + ',' + std::to_string(job.max_attempts) + ',' +
          std::to_string(job.timeout_ms) + ',' + std::to_string(job.backoff_base_ms) + ',' +
          std::to_string(job.backoff_cap_ms) + ',' +
          boost::json::serialize(boost::json::string(job.backoff_jitter)) + ',';
  form += run_at.empty() ? "null" : boost::json::serialize(boost::json::string(run_at));
  form += ']';
  return sha256_hex(form);
}

void release_expired_keys(pqxx::work& w, std::span<const new_job> jobs,
                          std::chrono::milliseconds ttl) {
  auto rows = key_rows(jobs);
  if (!rows.empty()) w.exec_params(release_expired_sql, rows, static_cast<long long>(ttl.count()));
}

std::vector<key_holder> find_key_holders(pqxx::work& w, std::span<const new_job> jobs) {
  std::vector<key_holder> out;
  auto rows = key_rows(jobs);
  if (rows.empty()) return out;
  for (const auto& row : w.exec_params(find_holders_sql, rows))
    out.push_back({job_id{row[0].as<std::string>()}, tenant_id{row[1].as<std::string>()},
                   row[2].as<std::string>(), row[3].as<std::string>(),
                   parse_job_state(row[4].as<std::string>()).value_or(job_state::queued)});
  return out;
}

int sweep_idempotency_keys(pqxx::work& w, std::chrono::milliseconds ttl, int limit) {
  auto res = w.exec_params(sweep_sql, static_cast<long long>(ttl.count()), limit);
  return static_cast<int>(res.affected_rows());
}

}  // namespace jobs
