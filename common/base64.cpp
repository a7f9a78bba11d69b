#include "common/base64.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace jobs {

namespace {

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Walks `in`, handing each decoded byte to `out` (null: only checks).
bool walk(std::string_view in, base64_padding padding, std::string* out, std::string* why) {
  auto fail = [&](std::string w) {
    if (why) *why = std::move(w);
    return false;
  };
  // The data without its padding: at most two `=`, only at the end of a
  // multiple of 4 characters.
  std::size_t data = in.size();
  while (data > 0 && in.size() - data < 2 && in[data - 1] == '=') --data;
  bool padded = data < in.size();
  if ((padded || padding == base64_padding::required) && in.size() % 4 != 0)
    return fail("its length is impossible");
  if (data % 4 == 1) return fail("its length is impossible");
  if (out) out->reserve(data / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < data; ++i) {
    int v = value_of(in[i]);
    if (v < 0)
      return fail(in[i] == '=' ? "padding before the end"
                               : "unexpected character at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out) out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> decode_base64(std::string_view in, base64_padding padding,
                                         std::string* why) {
  std::string out;
  if (!walk(in, padding, &out, why)) return std::nullopt;
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool is_base64(std::string_view in, base64_padding padding, std::string* why) {
  return walk(in, padding, nullptr, why);
}

}  // namespace jobs
