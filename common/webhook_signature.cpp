#include "common/webhook_signature.hpp"

#include "common/base64.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace jobs::webhooks {

std::string base64_encode(std::string_view bytes) { return encode_base64(bytes); }

std::optional<std::string> base64_decode(std::string_view s) {
  if (s.empty()) return std::nullopt;
  auto out = decode_base64(s, base64_padding::required);
  // Canonical only: the unused bits of the last quantum zero.
  if (!out || encode_base64(*out) != s) return std::nullopt;
  return out;
}

std::optional<std::string> decode_secret(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (!secret.starts_with(prefix)) return std::nullopt;
  auto key = base64_decode(secret.substr(prefix.size()));
  if (!key || key->size() < 24 || key->size() > 64) return std::nullopt;
  return key;
}

std::string sign(std::string_view id, std::int64_t timestamp, std::string_view body,
                 std::string_view key) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  return "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string signature_header(std::string_view id, std::int64_t timestamp, std::string_view body,
                             std::span<const std::string> keys) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ' ';
    out += sign(id, timestamp, body, k);
  }
  return out;
}

}  // namespace jobs::webhooks
