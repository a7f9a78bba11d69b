#include "api/router.hpp"

#include "api/job_filter.hpp"
#include "api/static_files.hpp"
#include "common/log.hpp"
#include "common/trace.hpp"

#include <fmt/format.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace jobs {

namespace {

std::string_view bearer_token(const http_request& req) {
  auto h = req[http::field::authorization];
  constexpr std::string_view scheme = "Bearer ";
  if (h.size() <= scheme.size()) return {};
  // The scheme is case-insensitive (RFC 9110).
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(h[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i])))
      return {};
  return h.substr(scheme.size());
}

// The trace of the request's `traceparent` header, or a new one.
std::string request_trace_id(const http_request& req) {
  if (auto h = req.find("traceparent"); h != req.end())
    if (auto id = trace_id_from_traceparent(h->value())) return *id;
  return new_trace_id();
}

constexpr std::string_view idempotency_key_header = "Idempotency-Key";
constexpr std::string_view idempotent_replayed_header = "Idempotent-Replayed";

}  // namespace

router::router(api_backend& backend, const schema_registry& schemas, router_options o)
    : backend_(backend), schemas_(schemas), opts_(o), limiter_(o.rates) {}

http_response router::json_response(http::status s, std::string body, const http_request& req) {
  http_response res{s, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

bool router::is_json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  auto media = ct.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media.size() != 16) return false;
  for (std::size_t i = 0; i < media.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(media[i])) != "application/json"[i]) return false;
  return true;
}

std::optional<http_response> router::require_json(const http_request& req) {
  if (is_json_content_type(req[http::field::content_type])) return std::nullopt;
  return problem_response(
      make_problem(415, "unsupported_media_type", "send Content-Type: application/json"),
      req.version(), req.keep_alive());
}

http_response router::problem_response(const problem& p, unsigned version, bool keep_alive) {
  http_response res{static_cast<http::status>(p.status), version};
  res.set(http::field::content_type, "application/problem+json");
  if (p.status == 503 && p.retry_after_s == 0) res.set(http::field::retry_after, "1");
  if (p.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(p.retry_after_s));
  if (p.status == 401) res.set(http::field::www_authenticate, "Bearer");
  res.keep_alive(keep_alive);
  res.body() = boost::json::serialize(p.to_json());
  res.prepare_payload();
  return res;
}

void router::head_only(http_response& res) {
  if (res.body().empty()) return;  // static files answer HEAD themselves
  auto size = res.body().size();
  res.body().clear();
  res.content_length(size);
}

boost::asio::awaitable<http_response> router::handle(const http_request& req) {
  auto start = std::chrono::steady_clock::now();
  std::string_view route_name = "unmatched";
  std::optional<http_response> res;
  try {
    res = co_await route(req, route_name);
  } catch (const std::exception& e) {
    // A server we depend on failed; the client may retry.
    log_warn("request failed", {{"target", std::string(req.target())}, {"error", e.what()}});
    res = problem_response(
        make_problem(503, "unavailable", "a backing service is unavailable; retry later"),
        req.version(), req.keep_alive());
  }
  if (req.method() == http::verb::head) head_only(*res);
  if (opts_.metrics) {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    auto status = std::to_string(res->result_int());
    opts_.metrics->http.with({http::to_string(req.method()), route_name, status})
        .observe(took.count());
  }
  co_return std::move(*res);
}

namespace {
bool match(std::string_view pattern, std::string_view path, std::string& param) {
  // Segment by segment; "{name}" matches one non-empty segment.
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    auto pe = pattern.find('/'), se = path.find('/');
    auto pseg = pattern.substr(0, pe), seg = path.substr(0, se);
    if (pseg.starts_with('{')) {
      if (seg.empty()) return false;
      param = seg;
    } else if (pseg != seg) {
      return false;
    }
    pattern = pe == std::string_view::npos ? "" : pattern.substr(pe);
    path = se == std::string_view::npos ? "" : path.substr(se);
  }
  return true;
}
}  // namespace

const std::vector<router::route_entry>& router::routes() {
  static const std::vector<route_entry> table{
      {http::verb::get, "/healthz", false, false, &router::health},
      {http::verb::get, "/readyz", false, false, &router::ready},
      {http::verb::get, "/metrics", false, false, &router::serve_metrics},
      {http::verb::post, "/v1/jobs", true, true, &router::submit},
      {http::verb::post, "/v1/jobs/batch", true, true, &router::submit_batch},
      {http::verb::get, "/v1/jobs", true, false, &router::list},
      {http::verb::get, "/v1/jobs/{id}", true, false, &router::get_job},
      {http::verb::post, "/v1/jobs/{id}/cancel", true, true, &router::cancel},
      {http::verb::post, "/v1/jobs/{id}/retry", true, true, &router::retry},
      {http::verb::post, "/v1/keys", true, true, &router::create_key, true},
      {http::verb::get, "/v1/keys", true, false, &router::list_keys, true},
      {http::verb::delete_, "/v1/keys/{id}", true, true, &router::revoke_key, true},
      {http::verb::get, "/v1/webhook-endpoints", true, false, &router::list_endpoints},
      {http::verb::get, "/v1/webhook-endpoints/{name}", true, false, &router::get_endpoint},
      {http::verb::put, "/v1/webhook-endpoints/{name}", true, true, &router::put_endpoint, true},
      {http::verb::get, "/v1/jobs/{id}/events", true, false, &router::job_events, true},
      {http::verb::get, "/v1/admin/queues", true, false, &router::admin_queues, true, true},
      {http::verb::get, "/v1/admin/history", true, false, &router::admin_history, true, true},
      {http::verb::get, "/v1/admin/settings", true, false, &router::admin_settings, true},
      {http::verb::post, "/v1/admin/jobs/{action}", true, true, &router::admin_bulk, true},
      {http::verb::post, "/v1/admin/queues/{name}/pause", true, true, &router::pause_queue, true,
       true},
      {http::verb::post, "/v1/admin/queues/{name}/resume", true, true, &router::resume_queue, true,
       true},
      {http::verb::get, "/v1/queues", true, false, &router::list_queues, false, true},
  };
  return table;
}

boost::asio::awaitable<http_response> router::route(const http_request& req,
                                                    std::string_view& route_name) {
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target)
    co_return fail(make_problem(400, "bad_request", "the request target is not a valid path"));
  std::string path = target->path();
  if (path == "/admin" || path.starts_with("/admin/"))
    co_return serve_static(opts_.admin_dir, "/admin", path, req);

  // HEAD runs a GET route; handle() drops the body.
  auto method = req.method() == http::verb::head ? http::verb::get : req.method();
  const route_entry* found = nullptr;
  std::string allow, param;
  for (const auto& r : routes()) {
    if (!match(r.pattern, path, param)) continue;
    if (r.method == method) found = &r;
    route_name = r.pattern;  // a 405 is counted against the path's route
    allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(r.method));
    if (r.method == http::verb::get) allow += ", HEAD";
  }
  if (!found && allow.empty()) co_return fail(make_problem(404, "not_found", "no such route"));
  if (!found) {
    auto res = fail(make_problem(405, "method_not_allowed", "use " + allow));
    res.set(http::field::allow, allow);
    co_return res;
  }

  route_name = found->pattern;
  request_context ctx{req, std::nullopt, param, target->params()};
  if (found->needs_key) {
    auto key = bearer_token(req);
    if (!key.empty()) {
      std::string k(key);
      ctx.who = co_await backend_.authenticate(k);
    }
    if (!ctx.who)
      co_return fail(make_problem(401, "unauthorized", "send Authorization: Bearer <api key>"));
    if (found->writes && ctx.who->role == "viewer")
      co_return fail(
          make_problem(403, "forbidden", "this key has the viewer role: it can only read"));
    if (found->admin_only && ctx.who->role != "admin")
      co_return fail(make_problem(403, "forbidden", "this needs a key with the admin role"));
    if (found->platform_wide && !opts_.operator_tenants.empty() &&
        !opts_.operator_tenants.contains(ctx.who->tenant.value))
      co_return fail(make_problem(403, "operator_only",
                                  "queue figures and controls span every tenant: they need a key "
                                  "of an operator tenant (JOBS_OPERATOR_TENANTS)"));
    ctx.key_hash = hash_api_key(key);
    if (auto refused = limit(ctx, 1)) co_return std::move(*refused);
  }
  co_return co_await (this->*found->fn)(ctx);
}

boost::asio::awaitable<http_response> router::health(const request_context& ctx) {
  co_return json_response(http::status::ok, R"({"status":"ok"})", ctx.req);
}

boost::asio::awaitable<http_response> router::ready(const request_context& ctx) {
  auto rd = co_await backend_.ready();
  auto body = fmt::format(R"({{"status":"{}","database":{},"broker":{}}})",
                          rd.ok() ? "ready" : "not ready", rd.database, rd.broker);
  auto res =
      json_response(rd.ok() ? http::status::ok : http::status::service_unavailable, body, ctx.req);
  if (!rd.ok()) res.set(http::field::retry_after, "1");
  co_return res;
}

boost::asio::awaitable<http_response> router::get_job(const request_context& ctx) {
  job_id id{ctx.param};
  std::optional<std::string> job;
  if (is_uuid(id.value)) job = co_await backend_.find_job(ctx.who->tenant, id);
  if (!job)
    co_return problem_response(make_problem(404, "not_found", "no job with this id"),
                               ctx.req.version(), ctx.req.keep_alive());
  co_return json_response(http::status::ok, std::move(*job), ctx.req);
}

boost::asio::awaitable<http_response> router::retry(const request_context& ctx) {
  job_id id{ctx.param};
  std::pair<retry_result, std::string> reply{retry_result::not_found, {}};
  if (is_uuid(id.value)) reply = co_await backend_.retry_job(ctx.who->tenant, id);
  if (reply.first == retry_result::retried)
    co_return json_response(http::status::accepted, std::move(reply.second), ctx.req);
  auto p = reply.first == retry_result::not_found
               ? make_problem(404, "not_found", "no job with this id")
               : make_problem(409, "not_retryable", "only a dead or failed job can be retried");
  co_return problem_response(p, ctx.req.version(), ctx.req.keep_alive());
}

boost::asio::awaitable<http_response> router::cancel(const request_context& ctx) {
  job_id id{ctx.param};
  cancel_reply reply;
  if (is_uuid(id.value)) reply = co_await backend_.cancel_job(ctx.who->tenant, id);
  switch (reply.outcome.result) {
    case cancel_result::cancelled:
      co_return json_response(http::status::ok, std::move(reply.job), ctx.req);
    case cancel_result::requested:
      co_return json_response(http::status::accepted, std::move(reply.job), ctx.req);
    case cancel_result::not_cancellable:
      co_return problem_response(
          make_problem(409, "not_cancellable",
                       fmt::format("the job is already {}", to_string(reply.outcome.state))),
          ctx.req.version(), ctx.req.keep_alive());
    case cancel_result::not_found: break;
  }
  co_return problem_response(make_problem(404, "not_found", "no job with this id"),
                             ctx.req.version(), ctx.req.keep_alive());
}

boost::asio::awaitable<http_response> router::submit(const request_context& ctx) {
  const auto& req = ctx.req;
  const auto& who = *ctx.who;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  if (auto refused = require_json(req)) co_return std::move(*refused);
  std::optional<std::string_view> key_header;
  if (auto h = req.find(idempotency_key_header); h != req.end()) {
    if (req.count(idempotency_key_header) > 1) {
      auto p = make_problem(400, "invalid_field", "send one Idempotency-Key header");
      p.parameter = idempotency_key_header;
      co_return fail(p);
    }
    key_header = h->value();
  }
  auto parsed = parse_submission(req.body(), schemas_, opts_.limits,
                                 std::chrono::system_clock::now(), key_header);
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p);
  auto job = std::move(std::get<new_job>(parsed));
  job.id = new_job_id();
  job.tenant = who.tenant;
  job.trace_id = request_trace_id(req);
  auto id = job.id.value;
  auto state = job.state;
  auto outcome = co_await backend_.submit(job);
  if (outcome.refused) co_return fail(*outcome.refused);
  if (opts_.metrics && !outcome.replayed)
    opts_.metrics->submitted.with({job.queue, job.type}).inc();
  // A replay answers with the job the key already names, as it is now.
  if (outcome.replayed) {
    id = outcome.replayed->id.value;
    state = outcome.replayed->state;
  }
  auto body = fmt::format(R"({{"id":"{}","state":"{}","links":{{"self":"/v1/jobs/{}"}}}})", id,
                          to_string(state), id);
  auto res = json_response(outcome.replayed ? http::status::ok : http::status::accepted,
                           std::move(body), req);
  res.set(http::field::location, "/v1/jobs/" + id);
  if (outcome.replayed) res.set(idempotent_replayed_header, "true");
  co_return res;
}

boost::asio::awaitable<http_response> router::submit_batch(const request_context& ctx) {
  const auto& req = ctx.req;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  if (auto refused = require_json(req)) co_return std::move(*refused);
  if (req.find(idempotency_key_header) != req.end()) {
    auto p =
        make_problem(400, "invalid_field",
                     "a batch takes an idempotency_key per job, not an Idempotency-Key header");
    p.parameter = idempotency_key_header;
    co_return fail(p);
  }
  auto parsed = parse_batch(req.body(), schemas_, opts_.limits, opts_.batch,
                            std::chrono::system_clock::now());
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p);
  auto& jobs = std::get<std::vector<new_job>>(parsed);
  // The request took one token; a batch costs one per job.
  if (auto refused = limit(ctx, static_cast<double>(jobs.size() - 1)))
    co_return std::move(*refused);
  auto trace = request_trace_id(req);
  for (auto& job : jobs) {
    job.id = new_job_id();
    job.tenant = ctx.who->tenant;
    job.trace_id = trace;
  }
  auto results = co_await backend_.submit_many(jobs);

  boost::json::array out;
  out.reserve(jobs.size());
  const problem* refused = nullptr;
  std::size_t not_accepted = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    boost::json::object item;
    const auto& r = results[i];
    if (r.refused) {
      ++not_accepted;
      // 503 (retry the batch) outranks 409 (change the request).
      if (!refused || r.refused->status > refused->status) refused = &*r.refused;
      auto p = r.refused->to_json();
      p.erase("type");
      item["error"] = std::move(p);
      out.push_back(std::move(item));
      continue;
    }
    if (opts_.metrics && !r.replayed)
      opts_.metrics->submitted.with({jobs[i].queue, jobs[i].type}).inc();
    auto id = r.replayed ? r.replayed->id.value : jobs[i].id.value;
    item["id"] = id;
    item["state"] = to_string(r.replayed ? r.replayed->state : jobs[i].state);
    item["links"] = {{"self", "/v1/jobs/" + id}};
    if (r.replayed) item["replayed"] = true;
    out.push_back(std::move(item));
  }
  if (!refused) {
    boost::json::object body{{"jobs", std::move(out)}};
    co_return json_response(http::status::accepted, boost::json::serialize(body), req);
  }
  auto p = make_problem(refused->status, "batch_incomplete",
                        fmt::format("{} of {} jobs were not accepted (see jobs[].error); the "
                                    "others were, and run",
                                    not_accepted, jobs.size()));
  auto body = p.to_json();
  body["jobs"] = std::move(out);
  auto res = problem_response(p, req.version(), req.keep_alive());
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
  co_return res;
}

boost::asio::awaitable<http_response> router::list(const request_context& ctx) {
  const auto& req = ctx.req;
  const auto& who = *ctx.who;
  const auto& params = ctx.query;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  auto parsed = parse_job_filter(params, true, opts_.list_limit_max, {});
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p);
  const auto& f = std::get<job_filter>(parsed);
  auto jobs = co_await backend_.list_jobs(who.tenant, f);
  co_return json_response(http::status::ok, std::move(jobs), req);
}

std::optional<http_response> router::limit(const request_context& ctx, double n) {
  if (n <= 0) return std::nullopt;
  auto refused = limiter_.take(ctx.key_hash, ctx.who->tenant.value, n);
  if (!refused) return std::nullopt;
  auto p = make_problem(429, "rate_limited",
                        fmt::format("over this {}'s request rate; retry after the Retry-After "
                                    "seconds",
                                    refused->limit));
  p.retry_after_s = static_cast<int>((refused->wait.count() + 999) / 1000);
  return problem_response(p, ctx.req.version(), ctx.req.keep_alive());
}

boost::asio::awaitable<http_response> router::create_key(const request_context& ctx) {
  const auto& req = ctx.req;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  if (auto refused = require_json(req)) co_return std::move(*refused);
  auto parsed = parse_key_request(req.body(), std::chrono::system_clock::now());
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p);
  const auto& k = std::get<key_request>(parsed);
  auto body = co_await backend_.create_key(ctx.who->tenant, k);
  auto res = json_response(http::status::created, std::move(body), req);
  // The key is in this answer only: no cache may keep it.
  res.set(http::field::cache_control, "no-store");
  co_return res;
}

boost::asio::awaitable<http_response> router::list_keys(const request_context& ctx) {
  auto body = co_await backend_.list_keys(ctx.who->tenant);
  co_return json_response(http::status::ok, std::move(body), ctx.req);
}

boost::asio::awaitable<http_response> router::revoke_key(const request_context& ctx) {
  auto key = co_await backend_.revoke_key(ctx.who->tenant, ctx.param);
  if (!key)
    co_return problem_response(make_problem(404, "not_found", "no key with this id"),
                               ctx.req.version(), ctx.req.keep_alive());
  co_return json_response(http::status::ok, std::move(*key), ctx.req);
}

}  // namespace jobs
