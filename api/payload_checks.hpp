#pragma once
// Checks of job payloads that the job types' JSON Schemas cannot make
// (common/schema.hpp tries a `pattern` only on short strings), run by
// parse_submission() after the schema's: members carrying bytes are decoded
// as their worker decodes them (common/base64.hpp), so a payload its handler
// would refuse as malformed gets a 400 `payload_invalid` before anything is
// written, instead of a 202 and a job that ends dead.
//
//   email/send       attachments[i].content   padded base64
//   processing/hash  input_base64             base64, padding optional
//   webhooks/deliver url                      as the worker reads it
//                                             (common/webhook_url.hpp): port 1..65535,
//                                             no user info, a path
//
// Thread-safety: a pure function.

#include "common/problem.hpp"

#include <boost/json/value.hpp>

#include <optional>
#include <string_view>

namespace jobs {

/// nullopt when nothing is wrong (or the type has no such checks); else the
/// 400 problem, its pointer at the member (`/payload/attachments/0/content`).
std::optional<problem> check_payload(std::string_view queue, std::string_view type,
                                     const boost::json::value& payload);

}  // namespace jobs
