// submit, get, list, cancel, retry.
#include "api/cli/commands.hpp"

#include "api/cli/output.hpp"
#include "common/job.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

namespace jobs::cli {

namespace json = boost::json;

namespace {

std::string read_payload(const context& c) {
  const auto& pos = c.args.positionals;
  auto inline_payload = c.args.get("payload");
  if (inline_payload && pos.size() == 3)
    throw usage_error("give the payload as FILE or with --payload, not both");
  if (inline_payload) return *inline_payload;
  std::stringstream text;
  if (pos.size() < 3 || pos[2] == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(pos[2], std::ios::binary);
    if (!in) throw usage_error(fmt::format("cannot read the payload file '{}'", pos[2]));
    text << in.rdbuf();
  }
  return text.str();
}

// `ms` as a person writes it, in the largest unit that divides it: 7d, 1ms.
std::string duration_text(long ms) {
  for (auto [unit, name] :
       {std::pair{86400000L, "d"}, {3600000L, "h"}, {60000L, "m"}, {1000L, "s"}})
    if (ms >= unit && ms % unit == 0) return fmt::format("{}{}", ms / unit, name);
  return fmt::format("{}ms", ms);
}

// A duration option as the API takes it (ms), checked against the API's
// range (job_limits) here, so that a bad value leaves no job behind.
long duration_ms(const parsed_args& a, std::string_view option, long lo, long hi) {
  auto ms = parse_duration(*a.get(option), option).count();
  if (ms < lo || ms > hi)
    throw usage_error(
        lo == 0 ? fmt::format("--{}: at most {}", option, duration_text(hi))
                : fmt::format("--{}: from {} to {}", option, duration_text(lo), duration_text(hi)));
  return static_cast<long>(ms);
}

json::object submission(const context& c) {
  const auto& a = c.args;
  auto payload_text = read_payload(c);
  json::error_code ec;
  auto payload = json::parse(payload_text, ec);
  if (ec) throw usage_error(fmt::format("the payload is not JSON: {}", ec.message()));
  json::object body{{"queue", a.positionals[0]}, {"type", a.positionals[1]}, {"payload", payload}};
  using L = job_limits;
  if (auto v = a.get("priority"))
    body["priority"] = parse_integer(*v, "priority", L::min_priority, L::max_priority);
  if (auto v = a.get("max-attempts"))
    body["max_attempts"] = parse_integer(*v, "max-attempts", 1, L::max_max_attempts);
  if (a.has("run-at") && a.has("delay")) throw usage_error("give --run-at or --delay, not both");
  if (auto v = a.get("run-at")) {
    if (!is_rfc3339(*v))
      throw usage_error(
          fmt::format("--run-at: '{}' is not an RFC 3339 time (or use --delay 10m)", *v));
    body["run_at"] = *v;
  }
  if (a.has("delay")) body["delay_ms"] = duration_ms(a, "delay", 0, L::max_delay_ms);
  if (a.has("job-timeout"))
    body["timeout_ms"] = duration_ms(a, "job-timeout", L::min_timeout_ms, L::max_timeout_ms);
  json::object backoff;
  if (a.has("backoff-base"))
    backoff["base_ms"] = duration_ms(a, "backoff-base", 1, L::max_backoff_ms);
  if (a.has("backoff-cap")) backoff["cap_ms"] = duration_ms(a, "backoff-cap", 1, L::max_backoff_ms);
  if (backoff.contains("base_ms") && backoff.contains("cap_ms") &&
      backoff.at("cap_ms").as_int64() < backoff.at("base_ms").as_int64())
    throw usage_error("--backoff-cap must not be smaller than --backoff-base");
  if (auto v = a.get("jitter")) {
    if (!is_backoff_jitter(*v))
      throw usage_error(fmt::format("--jitter: '{}' is not {}", *v, backoff_jitters_text));
    backoff["jitter"] = *v;
  }
  if (!backoff.empty()) body["backoff"] = std::move(backoff);
  if ((a.has("interval") || a.has("timeout")) && !a.has("wait"))
    throw usage_error("--interval and --timeout go with --wait");
  return body;
}

std::string job_target(const std::string& id) { return "/v1/jobs/" + url_encode(id); }

}  // namespace

int cmd_submit(const context& c) {
  auto body = submission(c);
  // Checked before the job is submitted: a bad value must not leave one behind.
  auto pace = parse_follow_pace(c.args);
  std::map<std::string, std::string> headers;
  if (auto k = c.args.get("idempotency-key")) {
    // As the API takes it (common/idempotency.hpp, which jobsctl does not
    // link): caught here, with the reason.
    if (k->empty() || k->size() > 255 ||
        !std::all_of(k->begin(), k->end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; }))
      throw usage_error("--idempotency-key must be 1 to 255 printable ASCII characters");
    headers["Idempotency-Key"] = *k;
  }
  auto a = call(c, "POST", "/v1/jobs", json::serialize(body), headers);
  const auto& o = a.json.as_object();
  auto id = text(o, "id");
  if (c.json) {
    print_raw(c, a);
  } else if (c.args.has("quiet")) {
    c.out << id << "\n";
  } else {
    bool replayed = a.reply.headers.contains("idempotent-replayed");
    c.out << format_fields(
        {{"id", id},
         {"state", text(o, "state")},
         {"replayed", replayed ? "yes: the idempotency key names this job" : ""}});
  }
  if (!c.args.has("wait")) return 0;
  return follow_job(c, id, pace);
}

int cmd_get(const context& c) {
  auto a = call(c, "GET", job_target(c.args.positionals[0]));
  if (c.json)
    print_raw(c, a);
  else
    c.out << format_job(a.json.as_object());
  return 0;
}

namespace {

// The filter options of list and bulk as a query string ("" or "?a=b&..."),
// checked first: a bad value is a bad argument (2), not an API refusal (1).
std::string filter_query(const context& c) {
  if (auto v = c.args.get("state"); v && !parse_job_state(*v))
    throw usage_error(
        fmt::format("--state: '{}' is not a job state ({})", *v, fmt::join(job_state_names, ", ")));
  if (auto v = c.args.get("queue"); v && !is_known_queue(*v))
    throw usage_error(
        fmt::format("--queue: '{}' is not a queue ({})", *v, fmt::join(known_queues, ", ")));
  std::string query;
  auto add = [&](std::string_view name, std::string_view key) {
    if (auto v = c.args.get(name))
      query += fmt::format("{}{}={}", query.empty() ? "?" : "&", key, url_encode(*v));
  };
  add("queue", "queue");
  add("state", "state");
  add("type", "type");
  // A time, or a duration ago ("2h"), checked here.
  auto now = std::chrono::system_clock::now();
  for (auto [name, key] :
       {std::pair{"created-after", "created_after"}, std::pair{"created-before", "created_before"}})
    if (auto v = c.args.get(name))
      query += fmt::format("{}{}={}", query.empty() ? "?" : "&", key,
                           url_encode(parse_time_or_ago(*v, name, now)));
  add("search", "q");
  return query;
}

}  // namespace

int cmd_list(const context& c) {
  if (auto v = c.args.get("limit")) parse_integer(*v, "limit", 1, 500);
  auto query = filter_query(c);
  if (auto v = c.args.get("limit"))
    query += fmt::format("{}limit={}", query.empty() ? "?" : "&", url_encode(*v));
  std::string cursor = c.args.get("cursor").value_or("");
  json::array all;
  for (;;) {
    auto target = "/v1/jobs" + query;
    if (!cursor.empty()) target += (query.empty() ? "?cursor=" : "&cursor=") + url_encode(cursor);
    auto a = call(c, "GET", target);
    const auto& o = a.json.as_object();
    if (c.json) print_raw(c, a);
    if (auto* jobs = o.if_contains("jobs"); jobs && jobs->is_array())
      for (const auto& j : jobs->get_array()) all.push_back(j);
    cursor = text(o, "next_cursor");
    if (cursor.empty() || !c.args.has("all")) break;
  }
  if (c.json) return 0;
  c.out << format_job_list(all);
  if (!cursor.empty()) c.err << "more: add --cursor " << cursor << " (or --all)\n";
  return 0;
}

int cmd_cancel(const context& c) {
  auto a = call(c, "POST", job_target(c.args.positionals[0]) + "/cancel");
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  const auto& o = a.json.as_object();
  if (a.reply.status == 202)
    c.out << fmt::format("{}  {}: its worker was asked to stop\n", text(o, "id"), text(o, "state"));
  else
    c.out << fmt::format("{}  {}\n", text(o, "id"), text(o, "state"));
  return 0;
}

int cmd_retry(const context& c) {
  auto a = call(c, "POST", job_target(c.args.positionals[0]) + "/retry");
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  const auto& o = a.json.as_object();
  c.out << fmt::format("{}  {}: runs again, attempts reset\n", text(o, "id"), text(o, "state"));
  return 0;
}

int cmd_watch(const context& c) {
  return follow_job(c, c.args.positionals[0], parse_follow_pace(c.args));
}

int cmd_bulk(const context& c) {
  auto action = c.args.command->name.substr(std::string_view("bulk ").size());
  auto query = filter_query(c);
  bool dry_run = c.args.has("dry-run");
  if (dry_run) query += query.empty() ? "?dry_run=true" : "&dry_run=true";
  auto a = call(c, "POST", fmt::format("/v1/admin/jobs/{}{}", action, query));
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  const auto& o = a.json.as_object();
  auto done = action == "cancel"    ? "cancelled (running ones asked to stop)"
              : action == "requeue" ? "published again"
                                    : "retried";
  auto jobs = [](const std::string& n) { return n + (n == "1" ? " job" : " jobs"); };
  if (dry_run) {
    auto matched = text(o, "matched");
    bool one = matched == "1";
    c.out << fmt::format("{} {}; without --dry-run {} be {}\n", jobs(matched),
                         one ? "matches" : "match", one ? "it would" : "they would", done);
  } else {
    c.out << fmt::format("{} {}\n", jobs(text(o, "applied")), done);
    if (text(o, "complete") == "false")
      c.err << "more match than one request changes: run it again for the rest\n";
  }
  return 0;
}

}  // namespace jobs::cli
