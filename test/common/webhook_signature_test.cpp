// ctest-labels: webhooks
// Standard Webhooks signatures (common/webhook_signature.hpp), checked
// against the spec's published example and against the openssl CLI.
#include "common/webhook_signature.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

using namespace jobs::webhooks;

TEST_CASE("the Standard Webhooks example signature") {
  // From the Standard Webhooks specification's reference test vector.
  auto key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  REQUIRE(key);
  CHECK(key->size() == 24);
  CHECK(sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})", *key) ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("the signature matches openssl's HMAC-SHA256 over id.timestamp.body") {
  std::string key = "0123456789abcdef0123456789abcdef";  // 32 bytes
  std::string body = R"({"event":"invoice.paid","amount":42})";
  auto dir = std::filesystem::temp_directory_path() / fmt::format("sig-{}", ::getpid());
  std::filesystem::create_directories(dir);
  auto file = dir / "content";
  std::ofstream(file) << "job-1.1700000000." << body;
  std::string hexkey;
  for (unsigned char c : key) hexkey += fmt::format("{:02x}", c);
  auto cmd = fmt::format("openssl dgst -sha256 -mac HMAC -macopt hexkey:{} -binary {} | base64",
                         hexkey, file.string());
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 256> buf{};
    while (fgets(buf.data(), buf.size(), p)) out += buf.data();
    pclose(p);
  }
  std::filesystem::remove_all(dir);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  REQUIRE(!out.empty());
  CHECK(sign("job-1", 1700000000, body, key) == "v1," + out);
}

TEST_CASE("two secrets during a rotation give two signatures, space-separated") {
  std::vector<std::string> keys{std::string(24, 'a'), std::string(32, 'b')};
  auto h = signature_header("id", 5, "{}", keys);
  CHECK(h == sign("id", 5, "{}", keys[0]) + " " + sign("id", 5, "{}", keys[1]));
  CHECK(sign("id", 5, "{}", keys[0]) != sign("id", 6, "{}", keys[0]));
}

TEST_CASE("secrets must be whsec_ and canonical base64 of 24 to 64 bytes") {
  CHECK_FALSE(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  CHECK_FALSE(decode_secret("whsec_"));
  CHECK_FALSE(decode_secret("whsec_c2hvcnQ="));  // 5 bytes
  CHECK_FALSE(decode_secret("whsec_not base64!!!!"));
  auto k = decode_secret("whsec_" + base64_encode(std::string(32, '\x07')));
  REQUIRE(k);
  CHECK(*k == std::string(32, '\x07'));
  CHECK(base64_decode("YQ==") == std::string("a"));
  CHECK(base64_decode("YWI=") == std::string("ab"));
  CHECK_FALSE(base64_decode("YQ"));
}
