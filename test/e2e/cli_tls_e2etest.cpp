// ctest-labels: dashboard
// jobsctl over https: the certificate is verified (refused without the CA
// that signed it, accepted with --ca-file), the URL's path prefixes every
// target, and the key travels in the Authorization header. The server is
// test/support/webhook_sink with a certificate made by `openssl` here.
#include "support/jobsctl.hpp"
#include "support/live.hpp"
#include "support/webhook_sink.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

using namespace jobs::test;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("jobsctl verifies an https API and sends its key there") {
  namespace fs = std::filesystem;
  auto dir =
      fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / fmt::format("cli-tls-{}", getpid());
  fs::create_directories(dir);
  auto cmd = fmt::format(
      "(cd '{}' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=jobsctl-test-ca "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
      "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
      "-out srv.csr -subj /CN=localhost "
      "&& printf 'subjectAltName=DNS:localhost\\n' > ext "
      "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ext) > '{}/openssl.log' 2>&1",
      dir.string(), dir.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
  webhook_sink sink((dir / "srv.pem").string(), (dir / "srv.key").string());
  auto base = fmt::format("https://localhost:{}", sink.port());
  jobsctl cli{base + "/ok/prefix", "jk_tls_test", dir.string()};
  auto ca = (dir / "ca.pem").string();

  auto untrusted = cli({"get", "j1", "--json"});
  CHECK(untrusted.status == 3);
  CHECK(has(untrusted.err, "TLS handshake"));
  CHECK(sink.requests().empty());

  auto trusted = cli({"get", "j1", "--json", "--ca-file", ca});
  INFO(trusted.err);
  CHECK(trusted.status == 0);
  CHECK(trusted.out == "{\"ok\":true}\n");
  auto seen = sink.requests("/ok/prefix/v1/jobs/j1");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].header("authorization") == "Bearer jk_tls_test");

  // The certificate names localhost, not 127.0.0.1.
  auto by_ip = cli(
      {"get", "j1", "--ca-file", ca, "--url", fmt::format("https://127.0.0.1:{}/ok", sink.port())});
  CHECK(by_ip.status == 3);
  CHECK(has(by_ip.err, "TLS handshake"));

  // An answer that is not a problem: its status and the start of its body.
  auto down = cli({"list", "--ca-file", ca, "--url", base + "/status/503"});
  CHECK(down.status == 1);
  CHECK(has(down.err, "HTTP 503"));
  CHECK(has(down.err, "status 503"));
  CHECK(cli({"list", "--ca-file", (dir / "missing.pem").string()}).status == 2);
}
