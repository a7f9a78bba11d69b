#include "api/cli/output.hpp"

#include "common/json/json_text.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>

namespace jobs::cli {

namespace json = boost::json;

namespace {

// Numbers as people write them: 3, 2.5 (Boost.JSON would print 2.5e0).
std::string number(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) return json_text(v);
  return {};
}

double as_double(const json::value* v) {
  if (!v) return -1;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return -1;
}

const json::object& object_at(const json::object& o, std::string_view key) {
  static const json::object empty;
  auto* v = o.if_contains(key);
  return v && v->is_object() ? v->get_object() : empty;
}

}  // namespace

std::string text(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return {};
  if (v->is_string()) return printable(v->get_string());
  if (v->is_number()) return number(*v);
  return json_text(*v);
}

std::string describe_problem(const http_reply& reply) {
  json::error_code ec;
  auto v = json::parse(reply.body, ec);
  if (ec || !v.is_object() || !v.get_object().contains("code")) {
    auto s = fmt::format("HTTP {} {}", reply.status, reply.reason);
    if (!reply.body.empty()) s += ": " + clip(printable(reply.body), 200);
    return s;
  }
  const auto& p = v.get_object();
  auto s = fmt::format("{} ({} {})", text(p, "title"), reply.status, text(p, "code"));
  if (auto d = text(p, "detail"); !d.empty()) s += ": " + d;
  if (auto at = text(p, "pointer"); !at.empty()) s += fmt::format(" [at {}]", at);
  if (auto at = text(p, "parameter"); !at.empty()) s += fmt::format(" [parameter {}]", at);
  if (auto* errors = p.if_contains("errors"); errors && errors->is_array())
    for (const auto& e : errors->get_array())
      if (e.is_object())
        s += fmt::format("\n  {}: {} ({})", text(e.get_object(), "pointer"),
                         text(e.get_object(), "detail"), text(e.get_object(), "code"));
  if (auto it = reply.headers.find("retry-after"); it != reply.headers.end())
    s += fmt::format("; retry after {} s", it->second);
  if (reply.status == 401) s += "\nhint: check the API key (--key, --key-file or JOBS_API_KEY)";
  return s;
}

std::string format_job(const json::object& job) {
  auto attempts = text(job, "attempts") + "/" + text(job, "max_attempts");
  auto timeout = text(job, "timeout_ms");
  std::string backoff;
  if (const auto* b = job.if_contains("backoff"); b && b->is_object())
    backoff = fmt::format("{} ms base, {} ms cap, {} jitter", text(b->get_object(), "base_ms"),
                          text(b->get_object(), "cap_ms"), text(b->get_object(), "jitter"));
  auto out = format_fields({
      {"id", text(job, "id")},
      {"queue", text(job, "queue")},
      {"type", text(job, "type")},
      {"state", text(job, "state")},
      {"priority", text(job, "priority")},
      {"attempts", attempts},
      {"timeout", timeout.empty() ? "" : timeout + " ms"},
      {"backoff", backoff},
      {"error", text(job, "error")},
      {"worker", text(job, "worker_id")},
      {"created", text(job, "created_at")},
      {"run at", text(job, "run_at")},
      {"queued", text(job, "queued_at")},
      {"started", text(job, "started_at")},
      {"failed", text(job, "failed_at")},
      {"cancel asked", text(job, "cancel_requested_at")},
      {"cancelled", text(job, "cancelled_at")},
      {"finished", text(job, "finished_at")},
      {"payload", text(job, "payload")},
      {"result", text(job, "result")},
  });
  auto* history = job.if_contains("attempt_history");
  if (history && history->is_array() && !history->get_array().empty()) {
    std::vector<row> rows;
    for (const auto& a : history->get_array()) {
      if (!a.is_object()) continue;
      const auto& o = a.get_object();
      rows.push_back({text(o, "life"), text(o, "attempt"), text(o, "outcome"),
                      short_time(text(o, "started_at")), short_time(text(o, "finished_at")),
                      text(o, "worker_id"), clip(text(o, "error"), 80)});
    }
    out +=
        "\n" + format_table(
                   {"LIFE", "ATTEMPT", "OUTCOME", "STARTED", "FINISHED", "WORKER", "ERROR"}, rows);
  }
  return out;
}

std::string format_job_list(const json::array& jobs) {
  std::vector<row> rows;
  for (const auto& j : jobs) {
    if (!j.is_object()) continue;
    const auto& o = j.get_object();
    rows.push_back({text(o, "id"), text(o, "queue"), text(o, "type"), text(o, "state"),
                    text(o, "attempts") + "/" + text(o, "max_attempts"),
                    short_time(text(o, "created_at")), short_time(text(o, "finished_at")),
                    clip(text(o, "error"), 60)});
  }
  return format_table({"ID", "QUEUE", "TYPE", "STATE", "ATTEMPTS", "CREATED", "FINISHED", "ERROR"},
                      rows);
}

std::string format_queues(const json::value& answer) {
  const json::array* queues = nullptr;
  if (answer.is_array()) queues = &answer.get_array();
  if (answer.is_object())
    if (auto* q = answer.get_object().if_contains("queues"); q && q->is_array())
      queues = &q->get_array();
  std::vector<row> rows;
  if (queues)
    for (const auto& q : *queues) {
      if (!q.is_object()) continue;
      const auto& o = q.get_object();
      const auto& w = object_at(o, "workers");
      // Without a live supervisor, `running` is the broker's consumers and
      // nobody acts on `desired`.
      auto supervised = text(w, "supervised") != "false";
      auto workers = w.empty()    ? std::string("-")
                     : supervised ? fmt::format("{}/{} ({}..{})", text(w, "running"),
                                                text(w, "desired"), text(w, "min"), text(w, "max"))
                                  : fmt::format("{} (no supervisor)", text(w, "running"));
      auto rate = as_double(o.if_contains("completed_per_s"));
      auto age = o.if_contains("oldest_waiting_age_s");
      // `paused` (the dashboard's pause): workers take nothing from it.
      auto name = text(o, "name") + (text(o, "paused") == "true" ? " (paused)" : "");
      rows.push_back({name, text(o, "ready"), text(o, "unacked"), text(o, "consumers"), workers,
                      rate < 0 ? "-" : fmt::format("{:.1f}", rate),
                      !age || age->is_null() ? "-" : short_duration(as_double(age))});
    }
  auto out = format_table(
      {"QUEUE", "READY", "UNACKED", "CONSUMERS", "WORKERS (RUN/WANT MIN..MAX)", "DONE/S", "OLDEST"},
      rows);
  // Dead letters kept for people (jobs.dead), when there are any.
  if (answer.is_object())
    if (auto* d = answer.get_object().if_contains("dead_letters");
        d && d->is_int64() && d->get_int64() > 0)
      out += fmt::format("{} dead letters kept in jobs.dead\n", d->get_int64());
  return out;
}

std::string format_keys(const json::array& keys) {
  std::vector<row> rows;
  for (const auto& k : keys) {
    if (!k.is_object()) continue;
    const auto& o = k.get_object();
    rows.push_back({text(o, "id"), text(o, "prefix"), text(o, "name"), text(o, "role"),
                    short_time(text(o, "created_at")), short_time(text(o, "expires_at")),
                    short_time(text(o, "revoked_at"))});
  }
  return format_table({"ID", "PREFIX", "NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED"}, rows);
}

}  // namespace jobs::cli
