#pragma once
// The job message: what travels through RabbitMQ for one job.
//
// PostgreSQL holds the job (payload, state); the message only names it:
//   {"id":"<uuid>","tenant":"<tenant>","queue":"<queue>","type":"<type>"}
// plus "trace_id" when the job has one, sent persistent (delivery_mode 2)
// with message_id = job id and the AMQP header `traceparent` when traced. A worker that
// receives it claims the job by id and gets the payload from the claim.
//
// Thread-safety: pure functions.

#include <optional>
#include <string>
#include <string_view>

namespace jobs {

struct job_message {
  std::string id, tenant, queue, type;
  std::string trace_id = {};  ///< optional "trace_id" member (common/trace.hpp); empty: none
};

std::string encode_job_message(const job_message& m);

/// nullopt for a body that is not a well-formed job message (those are
/// dead-lettered with the reason, never retried).
std::optional<job_message> decode_job_message(std::string_view body, std::string* why = nullptr);

}  // namespace jobs
