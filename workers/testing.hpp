#pragma once
// Handlers for the platform's fault-injection tests, on queue `processing`,
// registered only when JOBS_TEST_HANDLERS=on (never in production). Their
// payload schemas live in test/schemas/jobs/.
//
// Each counts its own successful completion through a commit hook: a row
// in `test_handled (job_id, attempt)` (created by the test), written in the
// transaction that records the outcome. So a test counts what the handler
// completed, not what the state column says.
//
//   test.count       {sleep_ms?}   sleeps (watching stop_requested), succeeds
//   test.crash       {}            aborts the worker process (a poison message)
//   test.fail        {fail_times}  fails attempts 1..fail_times, then succeeds
//   test.fail_always {}            fails every attempt
//   test.fail_first  {}            dead on its first run in this process, succeeds on a retry
//   test.ignore_stop {sleep_ms?}   sleeps whatever it is asked (a handler that never checks
//                                  stop_requested), succeeds

#include "workers/handler.hpp"

namespace jobs {
// register_test_handlers is declared in workers/handler.hpp.
}
