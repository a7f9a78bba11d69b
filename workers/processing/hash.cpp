#include "common/base64.hpp"
#include "workers/processing/processing.hpp"

#include <openssl/evp.h>
#include <boost/json.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace jobs::processing {
namespace {

struct algorithm {
  std::string_view name;     // as in the payload
  const char* openssl_name;  // as OpenSSL's default provider knows it
};

constexpr std::array<algorithm, 7> algorithms{{
    {"sha256", "SHA2-256"},
    {"sha1", "SHA1"},
    {"sha384", "SHA2-384"},
    {"sha512", "SHA2-512"},
    {"md5", "MD5"},
    {"sha3-256", "SHA3-256"},
    {"blake2b512", "BLAKE2B-512"},
}};

std::string hex_encode(const unsigned char* data, std::size_t len) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (std::size_t i = 0; i < len; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0F];
  }
  return out;
}

const boost::json::string* optional_string(const boost::json::object& o, std::string_view key,
                                           bool& wrong_type) {
  const auto* v = o.if_contains(key);
  if (!v) return nullptr;
  if (!v->is_string()) wrong_type = true;
  return v->if_string();
}

}  // namespace

handler_result hash_handler(const job_context& ctx) {
  const auto* payload = ctx.payload.if_object();
  if (!payload) return handler_error::permanent("payload must be a JSON object");

  bool wrong_type = false;
  const auto* algorithm_name = optional_string(*payload, "algorithm", wrong_type);
  const auto* input = optional_string(*payload, "input", wrong_type);
  const auto* input_base64 = optional_string(*payload, "input_base64", wrong_type);
  const auto* encoding_name = optional_string(*payload, "encoding", wrong_type);
  if (wrong_type) {
    return handler_error::permanent("algorithm, input, input_base64 and encoding must be strings");
  }

  const std::string_view name = algorithm_name ? std::string_view(*algorithm_name) : "sha256";
  const algorithm* algo = nullptr;
  for (const auto& a : algorithms) {
    if (a.name == name) algo = &a;
  }
  if (!algo) return handler_error::permanent("unknown algorithm \"" + std::string(name) + "\"");

  const std::string_view encoding = encoding_name ? std::string_view(*encoding_name) : "hex";
  if (encoding != "hex" && encoding != "base64") {
    return handler_error::permanent("encoding must be \"hex\" or \"base64\"");
  }

  if ((input != nullptr) == (input_base64 != nullptr)) {
    return handler_error::permanent("give exactly one of input and input_base64");
  }
  constexpr std::size_t max_bytes = hash_limits::max_input_bytes;
  const std::string too_big = "input is larger than " + std::to_string(max_bytes) + " bytes";
  std::string decoded;
  std::string_view data;
  if (input) {
    data = *input;
  } else {
    // Reject before decoding so an oversized payload costs no allocation.
    if (input_base64->size() > (max_bytes + 2) / 3 * 4) return handler_error::permanent(too_big);
    std::string why;
    auto bytes = decode_base64(*input_base64, base64_padding::optional, &why);
    if (!bytes) return handler_error::permanent("input_base64 is not valid base64: " + why);
    decoded = std::move(*bytes);
    data = decoded;
  }
  if (data.size() > max_bytes) return handler_error::permanent(too_big);

  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(
      EVP_MD_fetch(nullptr, algo->openssl_name, nullptr), &EVP_MD_free);
  if (!md) {
    return handler_error::permanent("algorithm \"" + std::string(name) +
                                    "\" is not available in this OpenSSL build");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &digest_len, md.get(), nullptr) != 1) {
    // Not the input's fault (e.g. out of memory), so another attempt may succeed.
    return handler_error::retryable("OpenSSL failed to compute the digest");
  }

  boost::json::object result;
  result["algorithm"] = name;
  result["digest"] = encoding == "hex"
                         ? hex_encode(digest.data(), digest_len)
                         : encode_base64(std::string_view(
                               reinterpret_cast<const char*>(digest.data()), digest_len));
  result["encoding"] = encoding;
  result["bytes"] = static_cast<std::int64_t>(data.size());
  return boost::json::value(std::move(result));
}

}  // namespace jobs::processing
