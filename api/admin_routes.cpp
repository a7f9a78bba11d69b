// The router's admin dashboard routes (admin keys only, see the route
// table): a job's state timeline, queue overview and history, bulk cancel,
// retry and requeue of the jobs matching a filter (dry_run=true counts them
// first),
// pausing and resuming a queue.
#include "api/job_filter.hpp"
#include "api/router.hpp"
#include "common/admin_store.hpp"
#include "common/time.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace jobs {

namespace {
http_response fail(const problem& p, const http_request& req) {
  return router::problem_response(p, req.version(), req.keep_alive());
}
}  // namespace

boost::asio::awaitable<http_response> router::job_events(const request_context& ctx) {
  job_id id{ctx.param};
  std::optional<std::string> events;
  if (is_uuid(id.value)) events = co_await backend_.job_events(ctx.who->tenant, id);
  if (!events) co_return fail(make_problem(404, "not_found", "no job with this id"), ctx.req);
  co_return json_response(http::status::ok, std::move(*events), ctx.req);
}

boost::asio::awaitable<http_response> router::admin_queues(const request_context& ctx) {
  auto body = co_await backend_.queue_overview();
  co_return json_response(http::status::ok, std::move(body), ctx.req);
}

boost::asio::awaitable<http_response> router::admin_history(const request_context& ctx) {
  std::string range = "hour";
  for (auto p : ctx.query) {
    if (p.key != "range") {
      auto bad = make_problem(400, "unknown_field", "unknown query parameter " + p.key);
      bad.parameter = p.key;
      co_return fail(bad, ctx.req);
    }
    range = p.value;
  }
  std::optional<std::string> body;
  if (range == "hour" || range == "day" || range == "week")
    body = co_await backend_.queue_history(range);
  if (!body) {
    auto bad = make_problem(400, "invalid_field", "range must be hour, day or week");
    bad.parameter = "range";
    co_return fail(bad, ctx.req);
  }
  co_return json_response(http::status::ok, std::move(*body), ctx.req);
}

boost::asio::awaitable<http_response> router::admin_settings(const request_context& ctx) {
  // The broker's UI shows every tenant's queues: operators only, as the
  // queue figures are.
  bool operator_key =
      opts_.operator_tenants.empty() || opts_.operator_tenants.contains(ctx.who->tenant.value);
  boost::json::object body{{"broker_ui_url", operator_key ? opts_.admin_broker_ui_url : ""},
                           {"tenant", ctx.who->tenant.value},
                           {"role", ctx.who->role}};
  co_return json_response(http::status::ok, boost::json::serialize(body), ctx.req);
}

boost::asio::awaitable<http_response> router::admin_bulk(const request_context& ctx) {
  const auto& req = ctx.req;
  std::optional<bulk_action> action;
  if (ctx.param == "cancel") action = bulk_action::cancel;
  if (ctx.param == "retry") action = bulk_action::retry;
  if (ctx.param == "requeue") action = bulk_action::requeue;
  if (!action)
    co_return fail(make_problem(404, "not_found", "bulk actions are cancel, retry and requeue"),
                   req);
  auto parsed = parse_job_filter(ctx.query, false, opts_.list_limit_max, {"dry_run"});
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p, req);
  const auto& f = std::get<job_filter>(parsed);
  if (auto states = bulk_states(*action);
      !f.state.empty() && std::find(states.begin(), states.end(), f.state) == states.end()) {
    // It would match nothing: a mistake, not an empty result.
    std::string list;
    for (auto st : states) list += (list.empty() ? "" : ", ") + std::string(st);
    auto bad = make_problem(
        400, "invalid_field",
        ctx.param + " applies to jobs that are " + list + "; state=" + f.state + " matches none");
    bad.parameter = "state";
    co_return fail(bad, req);
  }
  bool dry_run = false;
  for (auto p : ctx.query) {
    if (p.key != "dry_run") continue;
    if (p.value != "true" && p.value != "false") {
      auto bad = make_problem(400, "invalid_field", "dry_run must be true or false");
      bad.parameter = "dry_run";
      co_return fail(bad, req);
    }
    dry_run = p.value == "true";
  }
  boost::json::object body{{"action", ctx.param}};
  if (dry_run) {
    // The moment counted: the dashboard applies the action with
    // created_before=as_of, so jobs submitted while a person confirms are
    // not swept in.
    body["as_of"] = format_rfc3339(std::chrono::system_clock::now());
    auto matched = co_await backend_.count_bulk(ctx.who->tenant, f, *action);
    body["matched"] = matched;
  } else {
    auto out = co_await backend_.apply_bulk(ctx.who->tenant, f, *action);
    body["applied"] = out.applied;
    body["complete"] = out.complete;
  }
  co_return json_response(http::status::ok, boost::json::serialize(body), req);
}

boost::asio::awaitable<http_response> router::pause_queue(const request_context& ctx) {
  if (!is_known_queue(ctx.param))
    co_return fail(make_problem(404, "not_found", "no such queue"), ctx.req);
  std::string by = ctx.who->tenant.value;
  bool changed = co_await backend_.set_queue_paused(ctx.param, true, by);
  boost::json::object body{{"queue", ctx.param}, {"paused", true}, {"changed", changed}};
  co_return json_response(http::status::ok, boost::json::serialize(body), ctx.req);
}

boost::asio::awaitable<http_response> router::resume_queue(const request_context& ctx) {
  if (!is_known_queue(ctx.param))
    co_return fail(make_problem(404, "not_found", "no such queue"), ctx.req);
  std::string by = ctx.who->tenant.value;
  bool changed = co_await backend_.set_queue_paused(ctx.param, false, by);
  boost::json::object body{{"queue", ctx.param}, {"paused", false}, {"changed", changed}};
  co_return json_response(http::status::ok, boost::json::serialize(body), ctx.req);
}

}  // namespace jobs
