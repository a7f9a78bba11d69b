// TLS towards the backends: the test's PostgreSQL and RabbitMQ get a TLS
// listener with a certificate of a CA the test makes; the platform runs
// through it with that CA, and a client trusting another CA is refused.
// ctest-labels: security
#include "common/db.hpp"
#include "queues/amqp.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// ca.pem (trusted), other.pem (another CA) and srv.pem/srv.key for
// localhost and 127.0.0.1, signed by ca.pem.
void make_certificates(const fs::path& dir) {
  fs::create_directories(dir);
  auto cmd = fmt::format(
      "(cd '{0}' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=jobs-test-ca "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
      "&& openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout other.key -out other.pem -days 2 -subj /CN=jobs-other-ca "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
      "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
      "-out srv.csr -subj /CN=localhost "
      "&& printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext "
      "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ext && chmod 600 srv.key) > '{0}/openssl.log' 2>&1",
      dir.string());
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "openssl failed; see ", dir.string());
}

// PostgreSQL reloads its TLS settings without a restart.
void set_pg_tls(const std::string& pg_url, const fs::path& dir, bool on) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  if (on) {
    // The server (user postgres when the tests run as root) must own its key.
    if (::geteuid() == 0)
      REQUIRE(std::system(fmt::format("chown postgres: '{}/srv.key'", dir.string()).c_str()) == 0);
    n.exec("ALTER SYSTEM SET ssl_cert_file = " + n.quote((dir / "srv.pem").string()));
    n.exec("ALTER SYSTEM SET ssl_key_file = " + n.quote((dir / "srv.key").string()));
    n.exec("ALTER SYSTEM SET ssl = on");
  } else {
    n.exec("ALTER SYSTEM RESET ssl");
    n.exec("ALTER SYSTEM RESET ssl_cert_file");
    n.exec("ALTER SYSTEM RESET ssl_key_file");
  }
  n.exec("SELECT pg_reload_conf()");
}

// Runs `fn`, which must throw E; returns its message and checks it came fast.
template <class E, class Fn>
std::string refusal(Fn fn) {
  auto t0 = std::chrono::steady_clock::now();
  std::string what;
  try {
    fn();
  } catch (const E& e) {
    what = e.what();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK_MESSAGE(!what.empty(), "the connection was not refused");
  CHECK(took < 5s);
  return what;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("PostgreSQL and RabbitMQ over verified TLS: the right CA works, another is refused") {
  fs::path test_dir = require_env("JOBS_TEST_DIR");
  auto dir = test_dir / "tls";
  make_certificates(dir);
  auto ca = (dir / "ca.pem").string();
  auto other = (dir / "other.pem").string();

  // RabbitMQ: a TLS listener beside the plain one, from a conf.d file read at start.
  int amqps_port = free_port();
  auto conf = test_dir / "rabbit" / "conf.d" / "50-tls.conf";
  {
    std::ofstream out(conf);
    out << fmt::format(
        "listeners.ssl.default = 127.0.0.1:{}\nssl_options.cacertfile = {}\n"
        "ssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\n"
        "ssl_options.fail_if_no_peer_cert = false\n",
        amqps_port, ca, (dir / "srv.pem").string(), (dir / "srv.key").string());
  }
  services("stop-rabbitmq");
  services("start-rabbitmq");
  fs::remove(conf);  // later restarts go back to plain AMQP only

  scratch s;
  set_pg_tls(s.pg_url, dir, true);
  struct pg_tls_off {
    std::string url;
    fs::path dir;
    ~pg_tls_off() {
      try {
        set_pg_tls(url, dir, false);
      } catch (...) {
      }
    }
  } restore{s.pg_url, dir};
  REQUIRE(wait_until(
      [&] {
        try {
          pg_connect(s.pg_url + "?sslmode=require");
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s));

  {  // another CA is refused, at once and saying why
    auto pg =
        refusal<pqxx::broken_connection>([&] { pg_connect(s.pg_url + "?sslrootcert=" + other); });
    MESSAGE("PostgreSQL: ", pg);
    CHECK(contains(pg, "certificate verify failed"));
    auto mq = refusal<amqp_error>([&] {
      amqp_connection c(
          parse_amqp_url(fmt::format("amqps://guest:guest@localhost:{}/{}?cacertfile={}",
                                     amqps_port, s.name, other)),
          0);
    });
    MESSAGE("RabbitMQ: ", mq);
    CHECK(contains(mq, "(TLS)"));
    CHECK(contains(mq, "verif"));
    // The right CA, but a host name the certificate does not carry.
    auto name = refusal<pqxx::broken_connection>([&] {
      auto url = s.pg_url;
      url.replace(url.find("127.0.0.1"), 9, "db.invalid");
      pg_connect(url + "?hostaddr=127.0.0.1&sslrootcert=" + ca);
    });
    MESSAGE("PostgreSQL, another name: ", name);
    CHECK(contains(name, "does not match host name"));
  }

  {  // the platform runs through TLS to both, with the test CA
    std::string pg_tls = s.pg_url + "?sslrootcert=" + ca;  // verify-full by default
    std::string amqps =
        fmt::format("amqps://guest:guest@localhost:{}/{}?cacertfile={}", amqps_port, s.name, ca);
    platform p(s, {"processing"}, {{"JOBS_PG_URL", pg_tls}, {"JOBS_AMQP_URL", amqps}});
    auto key = create_key(s.pg_url, "acme");
    http_client h(p.port);
    auto r = h.post_json("/v1/jobs", R"({"queue":"processing","type":"noop","payload":{}})", key);
    REQUIRE_MESSAGE(r.status == 202, r.status, " ", r.body);
    std::string id(r.json().at("id").as_string());
    REQUIRE(wait_until(
        [&] {
          return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND id = '" +
                                     id + "'") == 1;
        },
        30s));
    // Every connection of the platform to its database is encrypted.
    auto tls = count(s.pg_url, R"(
      SELECT count(*) FROM pg_stat_ssl l JOIN pg_stat_activity a USING (pid)
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND l.ssl)");
    auto plain = count(s.pg_url, R"(
      SELECT count(*) FROM pg_stat_ssl l JOIN pg_stat_activity a USING (pid)
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND NOT l.ssl)");
    MESSAGE("platform connections to PostgreSQL: ", tls, " TLS, ", plain, " plain");
    CHECK(tls >= 2);
    CHECK(plain == 0);
  }
}
