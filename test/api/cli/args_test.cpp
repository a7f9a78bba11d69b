// ctest-labels: dashboard
// jobsctl's argument parsing, durations, URLs and help texts.
#include "api/cli/args.hpp"
#include "api/cli/cli.hpp"
#include "api/cli/client.hpp"
#include "api/cli/commands.hpp"
#include "api/cli/help.hpp"
#include "common/config.hpp"

#include <doctest/doctest.h>

using namespace jobs::cli;
using namespace std::chrono_literals;

namespace {

parsed_args parse(std::vector<std::string> args) { return parse_args(args, command_specs()); }

}  // namespace

TEST_CASE("commands, subcommands, positionals and options in any order") {
  auto a = parse(
      {"--url", "http://h:1", "submit", "processing", "hash", "-", "--priority=5", "--json", "-q"});
  REQUIRE(a.command != nullptr);
  CHECK(a.command->name == "submit");
  CHECK(a.positionals == std::vector<std::string>{"processing", "hash", "-"});
  CHECK(a.get("url") == "http://h:1");
  CHECK(a.get("priority") == "5");
  CHECK(a.has("json"));
  CHECK(a.has("quiet"));
  CHECK(!a.has("wait"));

  auto k = parse({"keys", "revoke", "7", "--key", "jk_x"});
  CHECK(k.command->name == "keys revoke");
  CHECK(k.positionals == std::vector<std::string>{"7"});
  CHECK(k.get("key") == "jk_x");

  // A negative value and an argument that looks like an option after --.
  auto n = parse({"submit", "processing", "noop", "--priority", "-5", "--", "-file"});
  CHECK(n.get("priority") == "-5");
  CHECK(n.positionals.back() == "-file");
}

TEST_CASE("help needs no valid positionals; no command is not an error with --help") {
  CHECK(parse({"--help"}).help);
  CHECK(parse({"--help"}).command == nullptr);
  auto h = parse({"get", "-h"});
  CHECK(h.help);
  CHECK(h.command->name == "get");
  CHECK(parse({"keys", "--help"}).help);
}

TEST_CASE("bad command lines are usage errors that name the command") {
  CHECK_THROWS_WITH_AS(parse({"frob"}), "unknown command 'frob'", usage_error);
  CHECK_THROWS_WITH_AS(parse({"keys"}), "'keys' needs a subcommand: create, list, revoke",
                       usage_error);
  CHECK_THROWS_WITH_AS(parse({"bulk"}), "'bulk' needs a subcommand: cancel, retry, requeue",
                       usage_error);
  CHECK_THROWS_WITH_AS(parse({"keys", "rotate"}), "unknown command 'keys rotate'", usage_error);
  CHECK_THROWS_WITH_AS(parse({"get"}), "'get' needs ID", usage_error);
  CHECK_THROWS_WITH_AS(parse({"get", "a", "b"}), "'get' takes ID; unexpected 'b'", usage_error);
  CHECK_THROWS_WITH_AS(parse({"queues", "x"}), "'queues' takes no arguments; unexpected 'x'",
                       usage_error);
  CHECK_THROWS_WITH_AS(parse({"list", "--limit"}), "--limit needs a value", usage_error);
  CHECK_THROWS_WITH_AS(parse({"list", "--all=yes"}), "--all takes no value", usage_error);
  // An option of another command.
  CHECK_THROWS_WITH_AS(parse({"get", "x", "--priority", "1"}),
                       "unknown option '--priority' for 'get'", usage_error);
  // Command options only after the command.
  CHECK_THROWS_WITH_AS(parse({"--all", "list"}), "unknown option '--all'", usage_error);
  try {
    parse({"watch", "--bogus"});
    FAIL("no throw");
  } catch (const usage_error& e) {
    CHECK(e.command == "watch");
  }
}

TEST_CASE("time filters: an RFC 3339 time, or a duration ago") {
  CHECK(is_rfc3339("2026-12-01T09:00:00Z"));
  CHECK(is_rfc3339("2026-12-01t09:00:00.125z"));
  CHECK(is_rfc3339("2026-12-01T09:00:00+01:00"));
  CHECK_FALSE(is_rfc3339("2026-12-01"));
  CHECK_FALSE(is_rfc3339("2026-12-01T09:00:00"));
  CHECK_FALSE(is_rfc3339("2026-12-01T09:00:00.Z"));
  CHECK_FALSE(is_rfc3339("2026-12-01T09:00:00+0100"));
  CHECK_FALSE(is_rfc3339("2026-12-01T09:00:00Zjunk"));
  // The values too, as the API reads them.
  CHECK_FALSE(is_rfc3339("2026-02-30T09:00:00Z"));
  CHECK_FALSE(is_rfc3339("2026-12-01T24:00:00Z"));
  CHECK_FALSE(is_rfc3339("2030-01-01T00:00:60Z"));
  CHECK_FALSE(is_rfc3339("1969-12-31T23:59:59Z"));
  // 2026-12-06T12:00:00.7Z
  std::chrono::system_clock::time_point now{std::chrono::seconds(1796558400)};
  now += 700ms;
  CHECK(parse_time_or_ago("2026-12-01T09:00:00Z", "created-after", now) == "2026-12-01T09:00:00Z");
  CHECK(parse_time_or_ago("2h", "created-after", now) == "2026-12-06T10:00:00Z");
  CHECK(parse_time_or_ago("7d", "created-after", now) == "2026-11-29T12:00:00Z");
  CHECK_THROWS_WITH_AS(parse_time_or_ago("yesterday", "created-after", now),
                       "--created-after: 'yesterday' is not an RFC 3339 time (like "
                       "2026-12-01T09:00:00Z) or a duration ago (like 30m, 2h, 7d)",
                       usage_error);
  CHECK_THROWS_AS(parse_time_or_ago("2026-12-01", "created-after", now), usage_error);
  CHECK_THROWS_AS(parse_time_or_ago("40000d", "created-after", now), usage_error);
}

TEST_CASE("durations and integers") {
  CHECK(parse_duration("1500ms", "x") == 1500ms);
  CHECK(parse_duration("30s", "x") == 30s);
  CHECK(parse_duration("30", "x") == 30s);
  CHECK(parse_duration("5m", "x") == 5min);
  CHECK(parse_duration("2h", "x") == 2h);
  CHECK(parse_duration("1d", "x") == 24h);
  CHECK_THROWS_AS(parse_duration("", "x"), usage_error);
  CHECK_THROWS_AS(parse_duration("-1s", "x"), usage_error);
  CHECK_THROWS_AS(parse_duration("5 m", "x"), usage_error);
  CHECK_THROWS_AS(parse_duration("1y", "x"), usage_error);
  CHECK_THROWS_AS(parse_duration("99999999999999999d", "x"), usage_error);
  CHECK(parse_integer("-100", "p", -100, 100) == -100);
  CHECK_THROWS_WITH_AS(parse_integer("101", "p", -100, 100),
                       "--p: '101' is not an integer from -100 to 100", usage_error);
  CHECK_THROWS_AS(parse_integer("1x", "p", 0, 9), usage_error);
}

TEST_CASE("API URLs") {
  auto u = parse_api_url("https://jobs.example.com/api/");
  CHECK(u.tls);
  CHECK(u.host == "jobs.example.com");
  CHECK(u.port == "443");
  CHECK(u.path == "/api");
  auto l = parse_api_url("http://127.0.0.1:8780");
  CHECK(!l.tls);
  CHECK(l.port == "8780");
  CHECK(l.path.empty());
  CHECK(parse_api_url("http://[::1]:9/").host == "::1");
  CHECK_THROWS_AS(parse_api_url("ftp://x"), usage_error);
  CHECK_THROWS_AS(parse_api_url("127.0.0.1:8780"), usage_error);
  CHECK_THROWS_AS(parse_api_url("http://user:secret@h/"), usage_error);
  CHECK_THROWS_AS(parse_api_url("http://h/?q=1"), usage_error);
}

TEST_CASE("help lists every command and each command's options") {
  auto all = general_help();
  for (const auto& c : command_specs()) CHECK(all.find(std::string(c.name)) != std::string::npos);
  CHECK(all.find("JOBS_API_KEY") != std::string::npos);
  auto submit = command_help(*parse({"submit", "--help"}).command);
  CHECK(submit.find("Usage: jobsctl submit QUEUE TYPE [FILE|-] [options]") == 0);
  CHECK(submit.find("  -w, --wait") != std::string::npos);
  CHECK(submit.find("      --delay DURATION") != std::string::npos);
  // A group's help lists its subcommands, not every command.
  CHECK(parse({"bulk", "--help"}).group == "bulk");
  auto bulk = group_help("bulk");
  CHECK(bulk.find("Usage: jobsctl bulk SUBCOMMAND") == 0);
  for (const auto* sub : {"bulk cancel", "bulk retry", "bulk requeue"})
    CHECK(bulk.find(sub) != std::string::npos);
  CHECK(bulk.find("submit") == std::string::npos);
  CHECK(group_help("keys").find("keys revoke") != std::string::npos);
}

TEST_CASE("jobsctl's variables do not stop the daemons started from the same shell") {
  CHECK_NOTHROW(jobs::load_config({{"JOBS_URL", "http://127.0.0.1:8780"},
                                   {"JOBS_API_KEY", "jk_x"},
                                   {"JOBS_API_KEY_FILE", ".run/dev-api-key"}}));
}

TEST_CASE("list's --limit is checked by jobsctl: a usage error (2), no request made") {
  // The URL answers nothing: a request would be exit 3, the API's refusal 1.
  for (const char* limit : {"0", "abc", "501", "-3", "1.5"}) {
    CAPTURE(limit);
    CHECK(run({"list", "--limit", limit, "--url", "http://127.0.0.1:1", "--key", "jk_x"}) ==
          exit_usage);
  }
}
