// The README's curl examples, run against a live platform so they never rot.
#include "support/files.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

using namespace jobs::test;

namespace {

// The ```sh blocks between the readme-test markers, in order.
std::string readme_examples() {
  std::ifstream in(std::string(JOBS_SOURCE_DIR) + "/README.md");
  std::string line, script;
  bool region = false, block = false;
  while (std::getline(in, line)) {
    if (line.find("<!-- readme-test:begin -->") != std::string::npos) region = true;
    if (line.find("<!-- readme-test:end -->") != std::string::npos) region = false;
    if (!region) continue;
    if (!block && line == "```sh") {
      block = true;
    } else if (block && line == "```") {
      block = false;
    } else if (block) {
      script += line + "\n";
    }
  }
  return script;
}

}  // namespace

TEST_CASE("the README's curl examples work against a running platform") {
  auto examples = readme_examples();
  REQUIRE(examples.find("curl") != std::string::npos);
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "readme");

  auto dir = require_env("JOBS_BIN_DIR") + "/test-logs/" + s.name;
  std::ofstream(dir + "/readme.sh") << "set -euo pipefail\n" << examples;
  // jobsctl from this build, first on the PATH.
  auto cmd = "cd '" + dir + "' && PATH='" + require_env("JOBS_BIN_DIR") +
             "':\"$PATH\" API=http://127.0.0.1:" + std::to_string(p.port) + " KEY=" + key +
             " timeout 60 bash readme.sh > readme.out 2>&1";
  int rc = std::system(cmd.c_str());
  auto text = file_text(dir + "/readme.out");
  INFO("output:\n", text);
  CHECK(rc == 0);
  // What the comments in the README promise.
  CHECK(text.find(R"("state":"queued")") != std::string::npos);
  CHECK(text.find(R"("state":"scheduled")") != std::string::npos);
  // The batch: one answer with both of its jobs, the second scheduled.
  bool batch_seen = false;
  const auto all = text;
  for (auto at = all.find(R"({"jobs":[{"id":")"); at != std::string::npos && !batch_seen;
       at = all.find(R"({"jobs":[{"id":")", at + 1)) {
    auto answer = all.substr(at, all.find("]}", at) - at);
    batch_seen = answer.find(R"("state":"queued","links")") != std::string::npos &&
                 answer.find(R"("state":"scheduled","links")") != std::string::npos;
  }
  CHECK(batch_seen);
  CHECK(text.find(R"("state":"cancelled")") != std::string::npos);
  CHECK(text.find(R"("sum_amount":12.5)") != std::string::npos);
  CHECK(text.find(R"("code":"payload_invalid")") != std::string::npos);
  CHECK(text.find(R"("pointer":"/payload/input")") != std::string::npos);
  CHECK(
      text.find(R"({"status":"ready","database":true,"broker":true,"broker_state":"accepting"})") !=
      std::string::npos);
  // The idempotent submission: 202, then 200 with the same id, then 409.
  auto id_after = [&](const std::string& marker) {
    auto at = text.find(marker);
    if (at == std::string::npos) return std::string("(no ") + marker + ")";
    at = text.find(R"("id":")", at);
    return at == std::string::npos ? std::string("(no id)") : text.substr(at + 6, 36);
  };
  CHECK(text.find("Idempotent-Replayed: true") != std::string::npos);
  CHECK(id_after("HTTP/1.1 202 Accepted") == id_after("Idempotent-Replayed: true"));
  CHECK(text.find(R"("code":"idempotency_key_reused")") != std::string::npos);
  // The key example: created with its secret, listed, revoked.
  CHECK(text.find(R"("role":"submitter")") != std::string::npos);
  CHECK(text.find(R"("key":"jk_)") != std::string::npos);
  CHECK(text.find(R"({"keys":[)") != std::string::npos);
  CHECK(text.find(R"("revoked_at":"20)") != std::string::npos);
  // The webhook endpoint example: created, and shown without its secret.
  CHECK(text.find(R"("name":"default","secret_count":1)") != std::string::npos);
  CHECK(text.find("whsec_") == std::string::npos);
  // The jobsctl examples: a job followed to success, a table, a 404.
  CHECK(text.find("succeeded  attempt 1/5  result:") != std::string::npos);
  CHECK(text.find("ID                                    QUEUE") != std::string::npos);
  CHECK(text.find("(404 not_found): no job with this id\nexit status 1") != std::string::npos);
}
