// ctest-labels: dashboard
// The admin dashboard in a real browser: Debian's chromium, headless, driven
// by playwright-core (test/browser/dashboard.mjs) against the whole platform.
// Screenshots go to <build>/dashboard-screenshots/. Then the admin API's
// answers the page does not show: problem+json for bad filters and for
// non-admin keys, and a queue's pause kept in PostgreSQL.
#include "queues/amqp.hpp"
#include "support/files.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

http_reply call(http_client& h, http::verb v, const std::string& target, const std::string& key,
                const std::string& body = {}) {
  std::map<std::string, std::string> headers{{"authorization", "Bearer " + key}};
  if (!body.empty()) headers["content-type"] = "application/json";
  return h.request(v, target, body, headers);
}

std::string viewer_key(http_client& h, const std::string& admin) {
  auto made = call(h, http::verb::post, "/v1/keys", admin, R"({"name":"eyes","role":"viewer"})");
  REQUIRE_MESSAGE(made.status == 201, made.body);
  return std::string(made.json().at("key").as_string());
}

// Runs test/browser/dashboard.mjs in chromium against the platform on
// `port`, with `env` (the keys, a mode) besides the URL and the screenshot
// directory `shots` (emptied first); the script's output goes to `log`, which
// the failure shows unless it exits 0 within `deadline`.
void run_dashboard_script(int port, std::map<std::string, std::string> env,
                          const std::string& shots, const std::string& log,
                          std::chrono::seconds deadline) {
  std::string src = JOBS_SOURCE_DIR;
  REQUIRE_MESSAGE(std::filesystem::exists("/usr/bin/chromium"),
                  "chromium is missing: scripts/setup");
  REQUIRE_MESSAGE(std::filesystem::exists(src + "/test/browser/node_modules/playwright-core"),
                  "playwright-core is missing: scripts/setup installs it");
  std::filesystem::remove_all(shots);
  env["JOBS_DASH_URL"] = "http://127.0.0.1:" + std::to_string(port);
  env["JOBS_DASH_SHOTS"] = shots;
  process node("/usr/bin/node", {src + "/test/browser/dashboard.mjs"}, std::move(env), log);
  int status = node.wait(deadline);
  MESSAGE("screenshots in ", shots, "; browser log ", log);
  CHECK_MESSAGE(status == 0, file_text(log));
}

}  // namespace

TEST_CASE("the dashboard in chromium: depth, search, job page, retry, bulk cancel, pause") {
  scratch s;
  platform p(s, {"processing"}, {}, true);
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto viewer = viewer_key(h, admin);
  {
    // One message in jobs.dead, for the overview's note (dashboard.mjs).
    amqp_connection c(parse_amqp_url(s.amqp_url), 30);
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    amqp_connection::check_status(
        amqp_basic_publish(c.raw(), amqp_connection::channel, amqp_cstring_bytes(""),
                           as_bytes(dead_queue), 0, 0, &props, amqp_cstring_bytes("{}")),
        "basic.publish");
    REQUIRE(wait_until([&] { return inspect_queue(c, dead_queue).messages == 1; }, 10s));
  }

  auto shots = require_env("JOBS_BIN_DIR") + "/dashboard-screenshots";
  run_dashboard_script(p.port, {{"JOBS_DASH_KEY", admin}, {"JOBS_DASH_VIEWER_KEY", viewer}}, shots,
                       p.log_dir + "/browser.log", 300s);
  CHECK(std::filesystem::exists(shots + "/10-bulk-cancelled.png"));
}

TEST_CASE("the dashboard says why submissions are refused while the broker has a memory alarm") {
  scratch s;
  platform p(s, {"processing"}, {}, true);
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  std::string src = JOBS_SOURCE_DIR;
  REQUIRE_MESSAGE(std::filesystem::exists("/usr/bin/chromium"),
                  "chromium is missing: scripts/setup");
  memory_alarm alarm;
  REQUIRE(wait_until([&] { return h.request(http::verb::get, "/readyz").status == 503; }, 10s));
  auto shots = require_env("JOBS_BIN_DIR") + "/dashboard-screenshots-alarm";
  std::filesystem::remove_all(shots);
  auto log = p.log_dir + "/browser-alarm.log";
  process node("/usr/bin/node", {src + "/test/browser/dashboard.mjs"},
               {{"JOBS_DASH_URL", "http://127.0.0.1:" + std::to_string(p.port)},
                {"JOBS_DASH_SHOTS", shots},
                {"JOBS_DASH_KEY", admin},
                {"JOBS_DASH_MODE", "broker_alarm"}},
               log);
  // The script's first screenshot is taken once the banner showed the alarm.
  CHECK_MESSAGE(wait_until(
                    [&] {
                      return std::filesystem::exists(shots + "/01-broker-alarm.png") ||
                             !node.running();
                    },
                    120s),
                file_text(log));
  alarm.lift();
  CHECK_MESSAGE(node.wait(120s) == 0, file_text(log));
  MESSAGE("screenshots in ", shots, "; browser log ", log);
}

TEST_CASE("the admin API refuses non-admin keys and bad filters with problem+json") {
  scratch s;
  platform p(s);
  auto admin = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto viewer = viewer_key(h, admin);

  for (const auto* target : {"/v1/admin/queues", "/v1/admin/history", "/v1/admin/settings"}) {
    auto r = call(h, http::verb::get, target, viewer);
    CHECK(r.status == 403);
    CHECK(r.headers["content-type"] == "application/problem+json");
    CHECK(r.json().at("code") == "forbidden");
  }
  CHECK(call(h, http::verb::post, "/v1/admin/queues/processing/pause", viewer).status == 403);

  auto bad = call(h, http::verb::post, "/v1/admin/jobs/cancel?state=nope&dry_run=true", admin);
  CHECK(bad.status == 400);
  CHECK(bad.json().at("parameter") == "state");
  CHECK(call(h, http::verb::post, "/v1/admin/jobs/explode", admin).status == 404);
  CHECK(call(h, http::verb::get, "/v1/admin/history?range=year", admin).status == 400);
  CHECK(call(h, http::verb::post, "/v1/admin/queues/nope/pause", admin).status == 404);

  // The page itself needs no key; a path outside the directory is not found.
  auto page = h.request(http::verb::get, "/admin/");
  CHECK(page.status == 200);
  CHECK(page.body.find("app.js") != std::string::npos);
  CHECK(h.request(http::verb::get, "/admin/../CMakeLists.txt").status == 404);
  CHECK(h.request(http::verb::get, "/admin/.hidden").status == 404);

  // A pause is kept in PostgreSQL and shown in the listing.
  CHECK(call(h, http::verb::post, "/v1/admin/queues/email/pause", admin).status == 200);
  auto q = call(h, http::verb::get, "/v1/admin/queues", admin).json();
  bool email_paused = false;
  for (const auto& row : q.at("queues").as_array())
    if (row.at("name") == "email") email_paused = row.at("paused").as_bool();
  CHECK(email_paused);
  CHECK(count(s.pg_url, "SELECT count(*) FROM queue_controls WHERE queue = 'email' AND paused") ==
        1);
}

TEST_CASE("queue-wide figures and controls are for operator tenants only") {
  scratch s;
  platform p(s, {"processing"},
             {{"JOBS_OPERATOR_TENANTS", "ops, infra"},
              {"JOBS_ADMIN_BROKER_UI_URL", "http://mq.example:15672/"}});
  auto ops = create_key(s.pg_url, "ops");
  auto other = create_key(s.pg_url, "acme");
  http_client h(p.port);
  for (const auto* target : {"/v1/queues", "/v1/admin/queues", "/v1/admin/history"}) {
    CHECK(call(h, http::verb::get, target, ops).status == 200);
    auto r = call(h, http::verb::get, target, other);
    CHECK(r.status == 403);
    CHECK(r.json().at("code") == "operator_only");
  }
  auto refused = call(h, http::verb::post, "/v1/admin/queues/processing/pause", other);
  CHECK(refused.status == 403);
  CHECK(refused.json().at("title") == "Needs a key of an operator tenant");
  CHECK(count(s.pg_url, "SELECT count(*) FROM queue_controls WHERE paused") == 0);
  CHECK(call(h, http::verb::post, "/v1/admin/queues/processing/pause", ops).status == 200);
  CHECK(call(h, http::verb::post, "/v1/admin/queues/processing/resume", ops).status == 200);
  // The tenant's own jobs stay its own business.
  CHECK(call(h, http::verb::get, "/v1/jobs", other).status == 200);
  // The broker's UI (every tenant's queues) is linked for operators only.
  auto mine = call(h, http::verb::get, "/v1/admin/settings", other);
  CHECK(mine.status == 200);
  CHECK(mine.json().at("broker_ui_url") == "");
  CHECK(call(h, http::verb::get, "/v1/admin/settings", ops).json().at("broker_ui_url") ==
        "http://mq.example:15672/");

  // The dashboard signs such a key in and shows the refusal where the
  // queues would be (not an empty table and a line in the console).
  run_dashboard_script(p.port, {{"JOBS_DASH_KEY", other}, {"JOBS_DASH_MODE", "operator_only"}},
                       require_env("JOBS_BIN_DIR") + "/dashboard-screenshots-operator",
                       p.log_dir + "/browser-operator.log", 120s);
}
