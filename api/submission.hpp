#pragma once
// Turns a POST /v1/jobs body into a job row, or a problem for the client.
//
// Body: {"queue": "processing", "type": "hash", "payload": {...},
//        "priority": 0, "max_attempts": 5, "run_at": "2026-11-22T10:00:00Z"}
// queue, type and payload are required; unknown members are refused so a
// misspelled option never goes unnoticed. The payload is validated against
// its job type's JSON Schema before anything is written.
//
// Problems (status 400 unless noted), each with the JSON pointer it concerns:
//   invalid_json      body is not JSON (or invalid UTF-8)
//   json_too_deep     nesting deeper than the limit
//   invalid_request   body is not a JSON object
//   missing_field     a required member is absent
//   invalid_field     a member has the wrong type or is out of range
//   unknown_field     a member this API does not know
//   unknown_queue     queue is not email, processing or webhooks
//   unknown_job_type, payload_invalid   (from common/schema.hpp)
//
// Thread-safety: pure; the registry is read-only.

#include "common/problem.hpp"
#include "common/schema.hpp"
#include "common/store.hpp"
#include "common/time.hpp"

#include <string_view>
#include <variant>

namespace jobs {

struct submission_limits {
  int max_depth = 32;
};

/// The job (id and tenant left empty for the caller), or the problem.
std::variant<new_job, problem> parse_submission(std::string_view body,
                                                const schema_registry& schemas,
                                                const submission_limits& limits, sys_time now);

/// A problem with the standard title for `code`.
problem make_problem(int status, std::string code, std::string detail, std::string pointer = {});

}  // namespace jobs
