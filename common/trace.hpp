#pragma once
// Trace ids (W3C Trace Context): a job keeps the trace id of the request
// that submitted it, carried HTTP `traceparent` -> the jobs row and the
// message's AMQP `traceparent` header -> the worker's log lines for it.
//
//   traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//                version-trace id (32 hex)-parent id (16 hex)-flags
//
// Thread-safety: pure functions (new_* use OpenSSL's thread-safe RNG).

#include <optional>
#include <string>
#include <string_view>

namespace jobs {

/// The trace id of a valid `traceparent` header value, else nullopt (a
/// malformed header is ignored, as the spec asks, and a new trace started).
std::optional<std::string> trace_id_from_traceparent(std::string_view header);

/// A fresh random trace id: 32 lower-case hex digits, not all zero.
std::string new_trace_id();

/// A `traceparent` value for `trace_id` with a fresh parent (span) id.
std::string make_traceparent(std::string_view trace_id);

}  // namespace jobs
