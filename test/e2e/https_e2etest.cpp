// ctest-labels: security
// HTTPS served by the API itself (JOBS_HTTP_TLS_CERT / JOBS_HTTP_TLS_KEY),
// with a certificate made for the test: curl trusting it submits a job that
// succeeds; curl not trusting it, and plain HTTP, get nothing.
#include "support/live.hpp"
#include "support/smtp_sink.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

struct run_result {
  int status = -1;
  std::string out;
};

run_result run(const std::string& cmd) {
  run_result r;
  FILE* f = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  REQUIRE(f);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) r.out.append(buf, n);
  int st = ::pclose(f);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

TEST_CASE("the API serves HTTPS with the configured certificate") {
  scratch s;
  std::string dir = require_env("JOBS_BIN_DIR") + "/test-logs/" + s.name;
  make_test_certificate(dir + "/tls", "DNS:localhost,IP:127.0.0.1");
  auto cert = dir + "/tls/cert.pem";
  int port = free_port();
  std::map<std::string, std::string> env{{"JOBS_PG_URL", s.pg_url},
                                         {"JOBS_AMQP_URL", s.amqp_url},
                                         {"JOBS_HTTP_PORT", std::to_string(port)},
                                         {"JOBS_HTTP_TLS_CERT", cert},
                                         {"JOBS_HTTP_TLS_KEY", dir + "/tls/key.pem"}};
  process api(binary("jobs-api"), {}, env, dir + "/api.log");
  process worker(binary("jobs-worker"), {}, env, dir + "/worker.log");
  auto base = fmt::format("https://localhost:{}", port);
  auto curl = fmt::format("curl -sS --max-time 5 --cacert {} ", cert);
  REQUIRE_MESSAGE(wait_until([&] { return run(curl + "-f " + base + "/readyz").status == 0; }, 30s),
                  "the API did not become ready over HTTPS; see ", dir);

  // Not trusting the certificate: curl refuses it (60: peer certificate).
  CHECK(run(fmt::format("curl -sS --max-time 5 {}/healthz", base)).status == 60);
  // Plain HTTP to the TLS port gets no HTTP answer.
  auto plain =
      run(fmt::format("curl -sS --max-time 5 -o /dev/null -w '%{{http_code}}' "
                      "http://127.0.0.1:{}/healthz",
                      port));
  CHECK(plain.out != "200");

  auto key = create_key(s.pg_url, "acme");
  auto auth = fmt::format("-H 'Authorization: Bearer {}' ", key);
  auto made = run(curl + auth +
                  "-H 'Content-Type: application/json' "
                  "-d '{\"queue\":\"processing\",\"type\":\"noop\",\"payload\":{}}' " +
                  base + "/v1/jobs");
  REQUIRE_MESSAGE(made.status == 0, made.out);
  auto id = std::string(boost::json::parse(made.out).at("id").as_string());
  std::string state;
  CHECK(wait_until(
      [&] {
        auto r = run(curl + auth + base + "/v1/jobs/" + id);
        boost::system::error_code ec;
        auto doc = boost::json::parse(r.out, ec);
        if (!ec && doc.is_object() && doc.as_object().contains("state"))
          state = doc.at("state").as_string();
        return state == "succeeded";
      },
      30s));
  CHECK(state == "succeeded");

  // A hostile request over TLS gets its problem too.
  auto dup = run(curl + auth +
                 "-o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
                 "-d '{\"queue\":\"processing\",\"queue\":\"email\"}' " +
                 base + "/v1/jobs");
  CHECK(dup.out == "400");
}
