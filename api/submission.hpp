#pragma once
// Turns a POST /v1/jobs body into a job row, or a problem for the client.
//
// Body: {"queue": "processing", "type": "hash", "payload": {...},
//        "priority": 0, "max_attempts": 5, "run_at": "2026-11-22T10:00:00Z",
//        "timeout_ms": 300000}
// queue, type and payload are required; timeout_ms (1..86,400,000) defaults
// to the worker's JOBS_WORKER_JOB_TIMEOUT_MS. Unknown members are refused so a
// misspelled option never goes unnoticed. The payload is validated against
// its job type's JSON Schema before anything is written.
//
// An idempotency key (common/idempotency.hpp) comes from an `idempotency_key`
// member or the `Idempotency-Key` header; both may be given only if they are
// equal. With a key, the job carries the request's fingerprint (request_hash).
//
// Problems (status 400 unless noted), each with the JSON pointer it concerns:
//   invalid_json      body is not JSON
//   invalid_utf8, json_too_deep, json_string_too_long, json_array_too_long,
//   json_duplicate_key, json_number_out_of_range   (from api/json_guard.hpp)
//   invalid_request   body is not a JSON object
//   missing_field     a required member is absent
//   invalid_field     a member has the wrong type or is out of range; a bad
//                     Idempotency-Key header (`parameter` names it), or one
//                     that differs from idempotency_key
//   unknown_field     a member this API does not know
//   unknown_queue     queue is not email, processing or webhooks
//   unknown_job_type, payload_invalid   (from common/schema.hpp)
//
// Thread-safety: pure; the registry is read-only.

#include "api/json_guard.hpp"
#include "common/problem.hpp"
#include "common/schema.hpp"
#include "common/store.hpp"
#include "common/time.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>
#include <variant>

namespace jobs {

/// Depth, string and array limits of a request body (api/json_guard.hpp).
using submission_limits = json_limits;

/// A request body that must be one JSON object within the limits: the
/// object, or invalid_request or one of check_json's problems.
std::variant<boost::json::object, problem> parse_json_object(std::string_view body,
                                                             const submission_limits& limits);

/// The job (id and tenant left empty for the caller), or the problem.
/// `idempotency_header`: the Idempotency-Key header's value, if it was sent.
std::variant<new_job, problem> parse_submission(
    std::string_view body, const schema_registry& schemas, const submission_limits& limits,
    sys_time now, std::optional<std::string_view> idempotency_header = std::nullopt);

/// The same for a submission already parsed (one member of a batch): no
/// invalid_json, json_too_deep or invalid_request problems.
std::variant<new_job, problem> parse_submission(
    const boost::json::object& submission, const schema_registry& schemas, sys_time now,
    std::optional<std::string_view> idempotency_header = std::nullopt);

/// The job an idempotency key already names: the answer is that job (200).
struct replayed_job {
  job_id id;
  job_state state = job_state::queued;  ///< its state now
};

/// What the write path made of a submission: accepted (neither member set),
/// refused with a problem, or a replay of the job its idempotency key names.
/// Converts implicitly from what the write path completes with.
struct submit_result {
  submit_result(std::nullopt_t = std::nullopt) {}
  submit_result(problem p) : refused(std::move(p)) {}
  submit_result(std::optional<problem> p) : refused(std::move(p)) {}
  submit_result(replayed_job r) : replayed(std::move(r)) {}
  std::optional<problem> refused;
  std::optional<replayed_job> replayed;
};

/// A problem with the standard title for `code`.
problem make_problem(int status, std::string code, std::string detail, std::string pointer = {});

}  // namespace jobs
