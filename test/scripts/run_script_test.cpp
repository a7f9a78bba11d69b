// scripts/run on a checkout that PostgreSQL cannot use: a checkout under a
// directory closed to other users (0700, as a home directory often is).
// Run as root, PostgreSQL runs as user `postgres`, which cannot reach the
// data directory under .run/; the script must say so, and what to open,
// before it spends minutes building. A copy of scripts/ alone is enough: the
// script must stop before it looks for anything else.
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using jobs::test::command_output;

namespace {

struct closed_dir {
  fs::path path;
  closed_dir() {
    std::string tmpl = (fs::temp_directory_path() / "jobs-run-test.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
    ::chmod(path.c_str(), 0700);
  }
  ~closed_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("scripts/run under a directory closed to postgres stops before the build, naming it") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: only root runs PostgreSQL as another user");
    return;
  }
  if (command_output("id -u postgres 2>/dev/null").empty()) {
    MESSAGE("skipped: no user postgres");
    return;
  }
  closed_dir d;
  auto checkout = d.path / "checkout";
  fs::create_directories(checkout);
  fs::copy(fs::path(JOBS_SOURCE_DIR) / "scripts", checkout / "scripts",
           fs::copy_options::recursive);

  // A URL meant for a server elsewhere is not used, and the script says so.
  auto out = command_output(
      "JOBS_PG_URL=postgresql://elsewhere/db JOBS_AMQP_URL_FILE=/nonexistent timeout 120 " +
      (checkout / "scripts/run").string() + " 2>&1; echo \"rc=$?\"");
  INFO(out);
  CHECK(out.find("rc=1") != std::string::npos);
  for (const char* var : {"JOBS_PG_URL", "JOBS_AMQP_URL_FILE"})
    CHECK(out.find(std::string("run: ignoring ") + var +
                   ": scripts/run uses its own PostgreSQL and RabbitMQ in .run/") !=
          std::string::npos);
  CHECK(out.find("ignoring JOBS_AMQP_URL:") == std::string::npos);
  // The reason, and the directory to open: the closed one, not its parents.
  CHECK(out.find("cannot reach " + (checkout / ".run").string()) != std::string::npos);
  CHECK(out.find("chmod o+x " + d.path.string() + ",") != std::string::npos);
  CHECK(out.find("stopped before building and starting anything") != std::string::npos);
  // Nothing built, nothing started.
  CHECK(out.find("run: building") == std::string::npos);
  CHECK_FALSE(fs::exists(checkout / "build-release"));
  CHECK_FALSE(fs::exists(checkout / ".run" / "pg"));
}

TEST_CASE("scripts/run's reachability check passes once the closed directory is opened") {
  if (::geteuid() != 0 || command_output("id -u postgres 2>/dev/null").empty()) {
    MESSAGE("skipped: needs root and user postgres");
    return;
  }
  closed_dir d;
  auto run = d.path / "checkout" / ".run";
  fs::create_directories(run);
  auto check = "bash -c 'source " + std::string(JOBS_SOURCE_DIR) +
               "/scripts/lib/services.sh && svc_pg_reachable " + run.string() +
               "' 2>&1; echo \"rc=$?\"";
  CHECK(command_output(check).find("rc=1") != std::string::npos);
  ::chmod(d.path.c_str(), 0711);
  auto out = command_output(check);
  INFO(out);
  CHECK(out.find("rc=0") != std::string::npos);
}

TEST_CASE("scripts/run refuses JOBS_API_PORT and JOBS_HTTP_PORT that disagree, before anything") {
  auto out = command_output("JOBS_API_PORT=18780 JOBS_HTTP_PORT=18781 timeout 60 " +
                            std::string(JOBS_SOURCE_DIR) + "/scripts/run 2>&1; echo \"rc=$?\"");
  CHECK(out == "run: JOBS_API_PORT=18780 and JOBS_HTTP_PORT=18781 disagree; set one\nrc=1\n");
}
