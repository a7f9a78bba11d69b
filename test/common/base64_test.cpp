// Unit tests of common/base64.hpp: the decoder the email and hash workers use
// and the API checks their payloads with.
#include "common/base64.hpp"

#include <doctest/doctest.h>

using jobs::base64_padding;
using jobs::decode_base64;
using jobs::is_base64;

TEST_CASE("padded base64: a multiple of four, = only completing the last quantum") {
  auto req = base64_padding::required;
  CHECK(decode_base64("", req) == std::string());
  CHECK(decode_base64("aGk=", req) == std::string("hi"));
  CHECK(decode_base64("aA==", req) == std::string("h"));
  CHECK(decode_base64("aGkh", req) == std::string("hi!"));
  CHECK(decode_base64("+/+/", req) == std::string("\xfb\xff\xbf"));
  std::string why;
  CHECK_FALSE(decode_base64("aGk", req, &why));
  CHECK(why == "its length is impossible");
  CHECK_FALSE(decode_base64("a=Gk", req, &why));
  CHECK(why == "padding before the end");
  CHECK_FALSE(decode_base64("aG k", req, &why));
  CHECK(why == "unexpected character at offset 2");
  CHECK_FALSE(decode_base64("!!!!", req, &why));
  CHECK(why == "unexpected character at offset 0");
  CHECK_FALSE(decode_base64("a===", req));  // three = never complete a quantum
  CHECK_FALSE(decode_base64("aGk==", req));
  CHECK_FALSE(decode_base64("aGk=\n", req));
  CHECK_FALSE(is_base64("!!!", req));
  CHECK(is_base64("aGk=", req));
}

TEST_CASE("unpadded base64 is taken where padding is optional, never a length of 4n+1") {
  auto opt = base64_padding::optional;
  CHECK(decode_base64("aGk", opt) == std::string("hi"));
  CHECK(decode_base64("aA", opt) == std::string("h"));
  CHECK(decode_base64("aGk=", opt) == std::string("hi"));
  std::string why;
  CHECK_FALSE(decode_base64("aGkha", opt, &why));
  CHECK(why == "its length is impossible");
  CHECK_FALSE(decode_base64("aGk==", opt, &why));  // padded, then not a multiple of four
  CHECK_FALSE(decode_base64("a-Gk", opt, &why));
  CHECK(why == "unexpected character at offset 1");
}

TEST_CASE("what is encoded decodes back") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n < 7; ++n) {
    auto text = jobs::encode_base64(all.substr(n * 10, n));
    CHECK(text.size() % 4 == 0);
    CHECK(decode_base64(text, base64_padding::required) == all.substr(n * 10, n));
  }
  CHECK(jobs::encode_base64("hi") == "aGk=");
}
