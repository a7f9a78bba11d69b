#pragma once
// Standard Webhooks signatures (https://www.standardwebhooks.com/), shared by
// the API (which checks secrets) and the webhook worker (which signs).
//
// Every delivery carries
//   webhook-id:        the job id, the same on every attempt (receivers de-duplicate on it)
//   webhook-timestamp: Unix seconds when the attempt was signed
//   webhook-signature: "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>",
//                      one per active secret, separated by spaces (two during a rotation)
// where a secret is written "whsec_<base64 of the key bytes>" and the key
// is those bytes.
//
// Pure functions (OpenSSL HMAC and base64); thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace jobs::webhooks {

/// The key bytes of "whsec_<base64>" (24 to 64 bytes of key); nullopt if malformed.
std::optional<std::string> decode_secret(std::string_view secret);

/// "v1,<base64 HMAC-SHA256>" of `id.timestamp.body` with `key`.
std::string sign(std::string_view id, std::int64_t timestamp, std::string_view body,
                 std::string_view key);

/// The webhook-signature header for several keys: their signatures, space-separated.
std::string signature_header(std::string_view id, std::int64_t timestamp, std::string_view body,
                             std::span<const std::string> keys);

std::string base64_encode(std::string_view bytes);
/// nullopt if `s` is not canonical, padded base64.
std::optional<std::string> base64_decode(std::string_view s);

}  // namespace jobs::webhooks
