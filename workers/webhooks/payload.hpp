#pragma once
// A webhooks.deliver payload (schemas/jobs/webhooks.deliver.schema.json),
// checked again and turned into what the client sends. The API validated it
// against the schema already; this refuses what a schema cannot say
// (a URL the client cannot use, a header we set ourselves).
//
//   url         http:// or https:// URL, no user info, no fragment
//   method      POST (default) or PUT
//   body        any JSON; sent compact, as signed, with Content-Type: application/json
//   headers     extra headers: Authorization, User-Agent or X-* names; values without CR/LF
//   timeout_ms  the delivery's total deadline (default JOBS_WEBHOOK_TIMEOUT_MS)
//   endpoint    the tenant's configured endpoint whose secrets sign it (default: "default")
//
// Pure; thread-safe.

#include "common/webhook_url.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace jobs::webhooks {

/// The URL as the client uses it (common/webhook_url.hpp: the API checks it
/// the same way at submission).
using target_url = webhook_url;

struct delivery {
  target_url url;
  bool put = false;
  std::string body;  ///< serialized JSON
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{};
  std::string endpoint;  ///< never empty: "default" when the job names none
};

/// The URL as the client uses it, or why not.
std::variant<target_url, std::string> parse_url(std::string_view url);

/// True for a header name a job may set.
bool allowed_header(std::string_view name);

/// The delivery, or why the payload is unusable (a permanent error).
std::variant<delivery, std::string> parse_delivery(const boost::json::value& payload,
                                                   std::chrono::milliseconds default_timeout);

}  // namespace jobs::webhooks
