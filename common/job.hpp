#pragma once
// The job model, shared by the API, the workers and the SQL.
//
// A job moves through these states (DESIGN.md, "The delivery contract"):
//
//   scheduled -> queued       the scheduler publishes it when run_at comes
//   queued    -> running      a worker claims it
//   scheduled -> running      the same, when the message of a due job reached a
//   failed    -> running        worker before the scheduler's commit did
//   running   -> succeeded    the handler returned a result
//   running   -> failed       the attempt failed; a retry waits for run_at
//   running   -> dead         attempts exhausted, or a permanent error
//   running   -> scheduled    the handler snoozed (the attempt is not counted)
//   running   -> queued       rescued: its worker died and the lease expired
//   failed    -> queued       the retry is published when due
//   dead      -> scheduled    a client retries it (a new life, published at once)
//   failed    -> scheduled    a client retries it now
//   any non-final -> cancelled
//
// Every transition is a compare-and-set in PostgreSQL (see common/store.hpp);
// `can_transition` is the one list of legal moves, and the SQL claims and
// completions are written to agree with it (checked by unit tests).
//
// Thread-safety: all types here are values; free functions are pure, but
// new_job_id, which is thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jobs {

enum class job_state : std::uint8_t {
  scheduled,  ///< waiting in PostgreSQL for its run_at; not yet published
  queued,     ///< published to its queue; a worker may claim it
  running,    ///< claimed by a worker holding a lease
  succeeded,  ///< final: the handler returned a result
  failed,     ///< an attempt failed; a retry is scheduled at run_at
  dead,       ///< final: attempts exhausted or the error was permanent
  cancelled,  ///< final: cancelled by a client before it could finish
};

inline constexpr std::array all_job_states{
    job_state::scheduled, job_state::queued, job_state::running,  job_state::succeeded,
    job_state::failed,    job_state::dead,   job_state::cancelled};

/// The states' names in the API and the SQL, in the enum's order.
inline constexpr std::array<std::string_view, all_job_states.size()> job_state_names{
    "scheduled", "queued", "running", "succeeded", "failed", "dead", "cancelled"};

constexpr std::string_view to_string(job_state s) noexcept {
  return job_state_names[static_cast<std::size_t>(s)];
}

constexpr std::optional<job_state> parse_job_state(std::string_view s) noexcept {
  for (auto st : all_job_states)
    if (to_string(st) == s) return st;
  return std::nullopt;
}

/// True for succeeded, dead and cancelled: nothing moves a job out of them
/// except an explicit client retry of a dead job (which starts a new life).
constexpr bool is_final(job_state s) noexcept {
  return s == job_state::succeeded || s == job_state::dead || s == job_state::cancelled;
}

/// True when a worker may claim a job in this state at any time. (A due
/// scheduled or failed job may be claimed too; the SQL checks run_at.)
bool is_claimable(job_state s) noexcept;

/// The legal transitions of the diagram above.
bool can_transition(job_state from, job_state to) noexcept;

/// Strong types for identifiers that are easily mixed up.
template <class Tag>
struct strong_string {
  std::string value;
  friend bool operator==(const strong_string&, const strong_string&) = default;
  friend auto operator<=>(const strong_string&, const strong_string&) = default;
};
using job_id = strong_string<struct job_id_tag>;        ///< UUID text, time ordered (v7)
using tenant_id = strong_string<struct tenant_id_tag>;  ///< owner of jobs and keys
using queue_name = strong_string<struct queue_tag>;     ///< email, processing, webhooks

/// The job families that ship built in; each is one durable queue.
inline constexpr std::array<std::string_view, 3> known_queues{"email", "processing", "webhooks"};
constexpr bool is_known_queue(std::string_view q) noexcept {
  for (auto k : known_queues)
    if (k == q) return true;
  return false;
}

/// A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter
/// (ids from one process sort in creation order), then 62 random bits.
/// Thread-safe.
job_id new_job_id();

/// True for a canonical lower- or upper-case 8-4-4-4-12 hex UUID.
bool is_uuid(std::string_view s) noexcept;

/// Limits on what a client may ask for, with their defaults.
struct job_limits {
  static constexpr int default_max_attempts = 5;
  static constexpr int max_max_attempts = 100;
  static constexpr int min_priority = -100;
  static constexpr int max_priority = 100;
  static constexpr std::size_t max_type_length = 128;
  static constexpr int max_delay_ms = 7 * 24 * 3600 * 1000;    ///< a week; later: use run_at
  static constexpr int max_backoff_ms = 7 * 24 * 3600 * 1000;  ///< a week
  /// A job's retry backoff where it sets none (workers/retry_policy.hpp).
  static constexpr int default_backoff_base_ms = 1000;
  static constexpr int default_backoff_cap_ms = 3600 * 1000;
  static constexpr int min_timeout_ms = 1;         ///< execution timeout per attempt
  static constexpr int max_timeout_ms = 86400000;  ///< one day
};

/// The backoff jitters a job may name (workers/retry_policy.hpp applies them),
/// and the list as a message says it.
inline constexpr std::array<std::string_view, 3> backoff_jitters{"full", "equal", "none"};
inline constexpr std::string_view backoff_jitters_text = "full, equal or none";
constexpr bool is_backoff_jitter(std::string_view j) noexcept {
  for (auto k : backoff_jitters)
    if (k == j) return true;
  return false;
}

}  // namespace jobs
