#pragma once
// Idempotency keys: a name the client gives one submission, so that sending
// it again (a retry after a timeout) never creates a second job.
//
// A key is 1 to 255 printable ASCII characters (0x20..0x7E), scoped to its
// tenant: jobs.idempotency_key is unique per tenant while it is set. The
// request it was first used with is kept as jobs.request_hash, the SHA-256
// of the submission's canonical form (`request_hash` below): the same key
// with the same request names the same job, with another request it is
// refused (409 idempotency_key_reused).
//
// Keys expire `ttl` (JOBS_IDEMPOTENCY_TTL_MS, default 24 h) after their job
// was created. An expired key is free: `release_expired_keys` clears it from
// the old job just before a new submission takes it, and
// `sweep_idempotency_keys` clears old keys in bounded batches.
//
// Functions with a transaction throw pqxx errors; callers commit.
// Thread-safety: free functions; the ones without a transaction are pure.

#include "common/job.hpp"
#include "common/store.hpp"

#include <boost/json/value.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace jobs {

struct idempotency_limits {
  static constexpr std::size_t max_key_length = 255;
  static constexpr std::chrono::milliseconds default_ttl{86400000};
  static constexpr int sweep_batch = 1000;  ///< keys cleared per sweep statement
};

/// True for 1 to 255 characters, each printable ASCII (0x20..0x7E).
bool is_valid_idempotency_key(std::string_view key) noexcept;

/// Hex SHA-256 of the canonical form of a submission: a JSON array of the
/// job's queue and type, `payload` serialized with object members sorted by
/// name and no white space, its priority, max_attempts, timeout_ms and
/// backoff (base, cap, jitter), and `run_at` as asked (normalized to RFC 3339
/// UTC even when already past, or the delay; empty: null). Defaults count
/// as given: omitting `priority` is the same request as `"priority":0`. The
/// key itself is not part of it.
std::string request_hash(const new_job& job, const boost::json::value& payload,
                         std::string_view run_at);

/// The job that holds a key now.
struct key_holder {
  job_id id;
  tenant_id tenant;
  std::string key;
  std::string request_hash;
  job_state state = job_state::queued;
};

/// Clears the keys of `jobs` (those without a key are skipped) from jobs
/// created longer than `ttl` ago, so that `insert_jobs` can take them.
void release_expired_keys(pqxx::work& w, std::span<const new_job> jobs,
                          std::chrono::milliseconds ttl);

/// The jobs holding the keys of `jobs` (those without a key are skipped).
std::vector<key_holder> find_key_holders(pqxx::work& w, std::span<const new_job> jobs);

/// Clears up to `limit` keys of jobs created longer than `ttl` ago, oldest
/// first, skipping rows locked by others; returns how many were cleared.
int sweep_idempotency_keys(pqxx::work& w, std::chrono::milliseconds ttl, int limit);

}  // namespace jobs
