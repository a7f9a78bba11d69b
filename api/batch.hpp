#pragma once
// Turns a POST /v1/jobs/batch body into job rows, or a problem for the client.
//
// Body: {"jobs": [<submission>, ...]}, 1 to `max_jobs` submissions, each one
// exactly what POST /v1/jobs takes (api/submission.hpp) and validated the
// same way. Validation is all or nothing: when any member is invalid nothing
// is recorded, and the answer is 400 `batch_invalid` with each invalid
// member's problem in `errors` (at most `max_errors`), their pointers into
// the batch body (e.g. /jobs/3/payload/input).
//
// Idempotency keys are per job (a member's `idempotency_key`); two members
// may not share one. The Idempotency-Key header names one request, so the
// router refuses it on a batch.
//
// Problems besides the members' own (status 400): invalid_json and the
// strict checks of api/json_guard.hpp, invalid_request (not an object), missing_field /jobs,
// invalid_field /jobs (not an array, empty, or over max_jobs), unknown_field.
//
// Thread-safety: pure; the registry is read-only.

#include "api/submission.hpp"

#include <vector>

namespace jobs {

struct batch_limits {
  int max_jobs = 1000;
  std::size_t max_errors = 100;
};

std::variant<std::vector<new_job>, problem> parse_batch(std::string_view body,
                                                        const schema_registry& schemas,
                                                        const submission_limits& limits,
                                                        const batch_limits& batch, sys_time now);

}  // namespace jobs
