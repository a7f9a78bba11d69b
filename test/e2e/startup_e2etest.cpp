// How the daemons refuse to start with settings that cannot work: a wrong
// JOBS_* value is said before anything is done (`jobs-api check-config`,
// which scripts/run asks first), and a listener that cannot be opened names
// the address and the port.
#include "support/files.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// A daemon's output and exit status with only `env` set.
std::string run_with(const std::string& bin, const std::string& env, const std::string& args) {
  return command_output("env -i " + env + " " + binary(bin) + " " + args + " 2>&1; echo \"rc=$?\"");
}
std::string jobs_api(const std::string& env, const std::string& args) {
  return run_with("jobs-api", env, args);
}

}  // namespace

TEST_CASE("jobs-api check-config: 0 when every setting is good, 1 naming the one that is not") {
  CHECK(jobs_api("JOBS_HTTP_PORT=8780 JOBS_WORKER_METRICS_PORT=9464", "check-config") == "rc=0\n");
  auto threads = jobs_api("JOBS_HTTP_THREADS=abc", "check-config");
  CHECK(threads.find(R"(JOBS_HTTP_THREADS=\"abc\": expected an integer in [1, 64])") !=
        std::string::npos);
  CHECK(threads.ends_with("rc=1\n"));
  auto addr = jobs_api("JOBS_HTTP_ADDR=not-an-ip", "check-config");
  CHECK(addr.find(R"(JOBS_HTTP_ADDR=\"not-an-ip\": expected an IP address)") != std::string::npos);
  CHECK(addr.ends_with("rc=1\n"));
  auto unknown = jobs_api("JOBS_HTTP_PROT=8780", "check-config");
  CHECK(unknown.find("JOBS_HTTP_PROT") != std::string::npos);
  CHECK(unknown.ends_with("rc=1\n"));
}

// Settings only one daemon reads, which used to pass check-config and then
// stop that daemon (or a supervisor's workers, restarted for ever).
TEST_CASE("check-config of the API, a worker and the supervisor: what each would stop on") {
  struct refused {
    const char* bin;
    std::string env, args, says;
  };
  const std::vector<refused> cases{
      {"jobs-api", "JOBS_PG_URL=garbage", "check-config", "JOBS_PG_URL: bad PostgreSQL URL"},
      {"jobs-api", "JOBS_AMQP_URL=garbage", "check-config",
       "JOBS_AMQP_URL: the first broker address must be an amqp:// URL"},
      {"jobs-api", "JOBS_SCHEMA_DIR=/nonexistent", "check-config",
       R"(JOBS_SCHEMA_DIR=\"/nonexistent\" has no migrations/ directory)"},
      {"jobs-worker", "JOBS_SMTP_USER=u JOBS_SMTP_TLS=off", "--queue email check-config",
       "JOBS_SMTP_USER needs JOBS_SMTP_TLS=starttls or implicit"},
      {"jobs-worker", "JOBS_SMTP_USER=u JOBS_SMTP_PASSWORD_FILE=/dev/null",
       "--queue email check-config", "JOBS_SMTP_USER is set but the password is empty"},
      {"jobs-worker", "JOBS_WORKER_QUEUE=foo", "check-config", R"(unknown queue \"foo\")"},
      // Files the daemons load only when they connect or listen: an API
      // that started and retried for ever, a worker that crash-looped.
      {"jobs-api", "JOBS_AMQP_URL='amqps://u:p@localhost/?cacertfile=/nonexistent'", "check-config",
       R"(JOBS_AMQP_URL: cacertfile \"/nonexistent\" cannot be read)"},
      {"jobs-worker", "JOBS_AMQP_URL='amqps://u:p@localhost/?cacertfile=/nonexistent'",
       "--queue processing check-config",
       R"(JOBS_AMQP_URL: cacertfile \"/nonexistent\" cannot be read)"},
      {"jobs-api", "JOBS_HTTP_TLS_CERT=/etc/hostname JOBS_HTTP_TLS_KEY=/etc/hostname",
       "check-config", "JOBS_HTTP_TLS_CERT / JOBS_HTTP_TLS_KEY: TLS certificate /etc/hostname"},
      {"jobs-worker", "JOBS_WEBHOOK_CA_FILE=/nonexistent", "--queue webhooks check-config",
       R"(JOBS_WEBHOOK_CA_FILE=\"/nonexistent\")"},
      {"jobs-worker", "JOBS_SMTP_HOST=127.0.0.1 JOBS_SMTP_CA_FILE=/nonexistent",
       "--queue email check-config", R"(JOBS_SMTP_CA_FILE=\"/nonexistent\")"},
      {"jobs-worker", "JOBS_SMTP_HOST=127.0.0.1 JOBS_SMTP_CA_FILE=/etc/hostname",
       "--queue email check-config", R"(JOBS_SMTP_CA_FILE=\"/etc/hostname\")"},
      {"jobs-supervisor", "JOBS_LOG_LEVEL=info", "--pools 'processing=4..1' check-config",
       "min is over max"},
      {"jobs-supervisor", "JOBS_SUPERVISOR_WORKER_BIN=/nonexistent", "check-config",
       R"(JOBS_SUPERVISOR_WORKER_BIN: \"/nonexistent\" is not an executable file)"},
      {"jobs-worker", "JOBS_WEBHOOK_ALLOW='not a cidr/99'", "--queue webhooks check-config",
       "JOBS_WEBHOOK_ALLOW: not a CIDR or host name"},
      {"jobs-supervisor", "JOBS_SUPERVISOR_POOLS='email=1..1' JOBS_SMTP_USER=u JOBS_SMTP_TLS=off",
       "check-config", "JOBS_SMTP_USER needs JOBS_SMTP_TLS"},
      {"jobs-supervisor", "JOBS_SUPERVISOR_POOLS='webhooks=2..2' JOBS_WORKER_METRICS_PORT=65535",
       "check-config", "the pools' 2 workers take the ports 65535 to 65536, past 65535"},
      {"jobs-supervisor",
       "JOBS_SUPERVISOR_POOLS='webhooks=2..2' JOBS_WORKER_METRICS_PORT=28950 "
       "JOBS_SUPERVISOR_METRICS_PORT=28951",
       "check-config", "JOBS_SUPERVISOR_METRICS_PORT=28951 is among the workers' ports"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.env);
    auto out = run_with(c.bin, c.env, c.args);
    CHECK_MESSAGE(out.find(c.says) != std::string::npos, out);
    CHECK(out.ends_with("rc=1\n"));
  }
  // The same settings where that daemon does not read them pass.
  CHECK(run_with("jobs-worker", "JOBS_SMTP_USER=u JOBS_SMTP_TLS=off",
                 "--queue processing check-config") == "rc=0\n");
  CHECK(run_with("jobs-supervisor",
                 "JOBS_SUPERVISOR_POOLS='processing=1..2' JOBS_SMTP_USER=u JOBS_SMTP_TLS=off "
                 "JOBS_WORKER_METRICS_PORT=28950 JOBS_SUPERVISOR_METRICS_PORT=28952",
                 "check-config") == "rc=0\n");
  CHECK(run_with("jobs-worker", "", "check-config") == "rc=0\n");
}

TEST_CASE("the API and a worker on a port in use exit, naming the address and the port") {
  scratch s;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken(
      ioc, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(0)});
  auto port = std::to_string(taken.local_endpoint().port());
  auto dir = require_env("JOBS_BIN_DIR") + "/test-logs/" + s.name;
  std::filesystem::create_directories(dir);
  std::map<std::string, std::string> env{{"JOBS_PG_URL", s.pg_url},
                                         {"JOBS_AMQP_URL", s.amqp_url},
                                         {"JOBS_HTTP_PORT", port},
                                         {"JOBS_WORKER_METRICS_PORT", port},
                                         {"JOBS_METRICS_ADDR", "127.0.0.1"}};
  process api(binary("jobs-api"), {}, env, dir + "/api.log");
  process worker(binary("jobs-worker"), {"--queue", "processing"}, env, dir + "/worker.log");
  CHECK(api.wait(60s) == 1);
  CHECK(worker.wait(60s) == 1);
  auto expected = "cannot listen on 127.0.0.1:" + port + ": Address already in use";
  CHECK_MESSAGE(file_text(dir + "/api.log").find(expected) != std::string::npos, dir);
  CHECK_MESSAGE(file_text(dir + "/worker.log").find(expected) != std::string::npos, dir);
}
