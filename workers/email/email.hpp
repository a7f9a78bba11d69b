#pragma once
// The `email` queue: job type `send` delivers one message through an SMTP
// relay (workers/email/relay.hpp) with libcurl.
//
// Payload: schemas/jobs/email.send.schema.json (from, to, cc, bcc, reply_to,
// subject, text and/or html, headers, attachments, tags), checked again by
// the worker (workers/email/message.hpp): a bad payload is a permanent error.
//
// Outcomes (see workers/email/reply.hpp for the classification):
//   2xx after the data   -> {"message_id", "reply": {"code", "text"},
//                            "accepted": [...], "rejected": [{"address", "code", "text"}]?}
//   4xx, connection loss -> retryable, the reply or the failure in the error
//   5xx                  -> permanent (dead), the reply in the error
//   lost after DATA      -> retryable "unknown: ..." naming the Message-ID
//   no relay configured  -> retryable "no SMTP relay configured ..."
//   a domain over its rate -> sleeps up to `max_throttle_sleep`, else
//                           snoozes the job until its slot (not an attempt)
//
// Message-ID: `<job-id@message_id_domain>` (default: the sender's domain),
// the same on every attempt, so a retry after an unknown outcome can be
// recognised as the same message by receivers.
//
// Configuration: common/config.hpp (JOBS_SMTP_*, JOBS_EMAIL_*).
// Thread-safety: the handler runs on any number of handler threads at once.

#include "workers/email/relay.hpp"
#include "workers/handler.hpp"

#include <chrono>
#include <cstddef>
#include <string>

namespace jobs {

struct config;

struct email_options {
  email::relay_options relay;
  double domain_rate = 20;  ///< messages per second per recipient domain; 0: off
  std::size_t max_attachment_bytes = 10 << 20;
  std::string message_id_domain;  ///< empty: the sender's domain
  std::chrono::milliseconds max_throttle_sleep{500};
};

/// The email settings of `cfg`; throws config_error on an inconsistent set
/// (credentials without TLS).
email_options email_options_from(const config& cfg);

/// Registers ("email", "send"). Logs a warning when no relay is configured.
void register_email_handlers(handler_registry& r, const email_options& o);

}  // namespace jobs
