#pragma once
// What a finished attempt means for its job: the handler's result or error
// turned into the outcome the worker commits. Pure, so it is unit-tested
// without servers.
//
//   result                          -> succeeded, the result stored
//   snooze(until)                   -> scheduled at `until`, the attempt not counted (its
//                                      message the attempt row's error, not the job's)
//   permanent, or attempts used up  -> dead, with the error
//   retryable                       -> failed, run again at now + backoff delay
//                                      (or at its retry_at, when the handler set one)

#include "common/store.hpp"
#include "common/time.hpp"
#include "workers/handler.hpp"
#include "workers/retry_policy.hpp"

#include <cstddef>

namespace jobs::detail {

/// The worker's policy with the job's own backoff settings over it.
retry_policy job_retry_policy(const retry_policy& defaults, const claimed_job& job);

/// An attempt's error message is kept up to this many bytes (whole
/// characters): a handler's message is for people, and the job row and its
/// attempt row each hold it.
inline constexpr std::size_t max_error_bytes = 8192;
/// A result is at most this large (serialized) and this deeply nested;
/// past either the job ends dead, saying so.
inline constexpr std::size_t max_result_bytes = 1 << 20;
inline constexpr std::size_t max_result_depth = 64;

/// `u` is a uniform draw in [0, 1) for the jitter.
job_outcome decide_outcome(const claimed_job& job, const handler_result& result,
                           const retry_policy& defaults, double u, sys_time now);

}  // namespace jobs::detail
