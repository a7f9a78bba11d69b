#include "common/webhook_signature.hpp"

#include "common/base64.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace jobs::webhooks {

std::string base64_encode(std::string_view bytes) { return encode_base64(bytes); }

std::optional<std::string> base64_decode(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out(s.size() / 4 * 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t pad = s.ends_with("==") ? 2 : s.ends_with('=') ? 1 : 0;
  out.resize(static_cast<std::size_t>(n) - pad);
  if (base64_encode(out) != s) return std::nullopt;
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
