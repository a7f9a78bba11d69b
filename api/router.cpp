#include "api/router.hpp"

#include "api/static_files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "queues/amqp.hpp"

#include <fmt/format.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url.hpp>
#include <pqxx/except>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

namespace jobs {

namespace {
std::string_view bearer_token(const http::request_header<>& req) {
  // Two Authorization fields: which one a proxy in front checked is unknown.
  if (req.count(http::field::authorization) != 1) return {};
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

// A query with an empty segment: `?` alone, a leading or trailing `&`, `&&`.
bool has_empty_segment(std::string_view query) {
  return query.empty() || query.front() == '&' || query.back() == '&' ||
         query.find("&&") != std::string_view::npos;
}

// A decoded query parameter or path segment goes into SQL as text, which
// PostgreSQL refuses unless it is valid UTF-8 without NUL; and a parameter
// given twice would silently be its last value. Refused here, named, before
// any handler sees them.
// What a route refuses before its handler runs: query parameters that are
// not text or are repeated, any query parameter or body the route does not
// take (never ignored: a bulk cancel's filter sent as a body would have
// matched every job), a path segment that is not text.
std::optional<problem> refused_input(const router::route_entry& route, std::string_view param,
                                     boost::urls::params_view query, std::string_view body) {
  const auto pattern = route.pattern;
  auto bad = [](std::string name, std::string what) {
    auto p = make_problem(400, "invalid_field", what + " must be valid UTF-8 without NUL");
    p.parameter = std::move(name);
    return p;
  };
  std::vector<std::string> seen;
  for (auto q : query) {
    if (q.key.empty()) {
      auto p = make_problem(400, "unknown_field",
                            "a query parameter has no name (\"=" + utf8_text(q.value) + "\")");
      p.parameter = "=" + utf8_text(q.value);
      return p;
    }
    if (!is_storable_text(q.key))
      return bad(utf8_text(q.key), "the name of query parameter " + utf8_text(q.key));
    if (!is_storable_text(q.value)) return bad(q.key, q.key);
    // One value per parameter: a repeated one would silently be the last.
    if (std::find(seen.begin(), seen.end(), q.key) != seen.end()) {
      auto p = make_problem(400, "invalid_field", q.key + " is given more than once");
      p.parameter = q.key;
      return p;
    }
    seen.push_back(q.key);
    if (!route.has(router::takes_query)) {
      auto p = make_problem(400, "unknown_field", "unknown query parameter " + q.key);
      p.parameter = q.key;
      return p;
    }
  }
  if (!body.empty() && !route.has(router::takes_body))
    return make_problem(400, "unexpected_body",
                        route.has(router::takes_query)
                            ? "this route takes no request body: its parameters go in the query"
                            : "this route takes no request body");
  if (!is_storable_text(param)) {
    auto open = pattern.find('{'), close = pattern.find('}');
    auto name = std::string(pattern.substr(open + 1, close - open - 1));
    return bad({}, "the path segment {" + name + "}");
  }
  return std::nullopt;
}
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
  // One Content-Type (a second would be read by some as the body's type and
  // by others not), and that one JSON.
  auto [first, end] = req.equal_range(http::field::content_type);
  bool one = first != end && std::next(first) == end;
  if (one && is_json_content_type(first->value())) return std::nullopt;
  return problem_response(
      make_problem(415, "unsupported_media_type",
                   one || first == end ? "send Content-Type: application/json"
                                       : "send one Content-Type: application/json, not several"),
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

namespace {
// The 503 of a request a server we depend on failed, naming which one.
problem unavailable(const std::exception& e) {
  const char* which = dynamic_cast<const pqxx::failure*>(&e) ? "the database is"
                      : dynamic_cast<const amqp_error*>(&e)  ? "the message broker is"
                                                             : "a backing service is";
  return make_problem(503, "unavailable", fmt::format("{} unavailable; retry later", which));
}
}  // namespace

void router::head_only(http_response& res) {
  if (res.body().empty()) return;  // static files answer HEAD themselves
  auto size = res.body().size();
  res.body().clear();
  res.content_length(size);
}

boost::asio::awaitable<http_response> router::handle(const http_request& req,
                                                     const principal* checked) {
  auto start = std::chrono::steady_clock::now();
  std::string_view route_name = "unmatched";
  std::optional<http_response> res;
  try {
    res = co_await route(req, route_name, checked);
  } catch (const std::exception& e) {
    // A server we depend on failed; the client may retry.
    failures_.write(log_level::warn, "request failed",
                    {{"target", std::string(req.target())}, {"error", e.what()}});
    res = problem_response(unavailable(e), req.version(), req.keep_alive());
  }
  if (req.method() == http::verb::head) head_only(*res);
  observe(req.method(), route_name, res->result_int(), start);
  co_return std::move(*res);
}

void router::observe(http::verb method, std::string_view route_name, unsigned status,
                     std::chrono::steady_clock::time_point start) {
  if (!opts_.metrics) return;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  opts_.metrics->http.with({http::to_string(method), route_name, std::to_string(status)})
      .observe(took.count());
}

namespace {
// A segment of a path as its route sees it: percent-decoded, so that "%2F"
// in a job's id stays in the id (a 404) instead of splitting the path and
// reaching another route.
std::string decoded_segment(std::string_view seg) {
  auto pct = boost::urls::make_pct_string_view(seg);
  return pct ? pct->decode() : std::string(seg);
}

// `path` is the target's path as sent, still percent-encoded.
bool match(std::string_view pattern, std::string_view path, std::string& param) {
  // Segment by segment; "{name}" matches one non-empty segment.
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    auto pe = pattern.find('/'), se = path.find('/');
    auto pseg = pattern.substr(0, pe), raw = path.substr(0, se);
    // Decoded only when there is something to decode (most paths).
    bool encoded = raw.find('%') != std::string_view::npos;
    if (pseg.starts_with('{')) {
      if (raw.empty()) return false;
      param = encoded ? decoded_segment(raw) : std::string(raw);
    } else if (encoded ? pseg != decoded_segment(raw) : pseg != raw) {
      return false;
    }
    pattern = pe == std::string_view::npos ? "" : pattern.substr(pe);
    path = se == std::string_view::npos ? "" : path.substr(se);
  }
  return true;
}

struct found_route {
  const router::route_entry* entry = nullptr;  ///< null: 404 or 405
  std::string allow;                           ///< the path's methods, for a 405
  std::string param;
  std::string_view name = "unmatched";  ///< a 405 is counted against the path's route
};

found_route find_route(http::verb method, std::string_view path) {
  found_route out;
  // HEAD runs a GET route; handle() drops the body.
  if (method == http::verb::head) method = http::verb::get;
  // A path a route names exactly is that route's, whatever a pattern with a
  // parameter would also match: GET /v1/jobs/batch is a 405 (POST only), not
  // a job whose id is "batch".
  bool exact = false;
  for (const auto& r : router::routes()) {
    std::string param;
    if (!match(r.pattern, path, param)) continue;
    bool literal = r.pattern.find('{') == std::string_view::npos;
    if (literal && !exact) out = found_route{};
    if (!literal && exact) continue;
    exact = exact || literal;
    out.param = std::move(param);
    if (r.method == method) out.entry = &r;
    out.name = r.pattern;
    out.allow += (out.allow.empty() ? "" : ", ") + std::string(http::to_string(r.method));
    if (r.method == http::verb::get) out.allow += ", HEAD";
  }
  if (out.entry) out.name = out.entry->pattern;
  return out;
}

// The 404 or 405 for a path and method without a route.
http_response no_route(const found_route& f, unsigned version, bool keep_alive) {
  if (f.allow.empty())
    return router::problem_response(make_problem(404, "not_found", "no such route"), version,
                                    keep_alive);
  auto res = router::problem_response(make_problem(405, "method_not_allowed", "use " + f.allow),
                                      version, keep_alive);
  res.set(http::field::allow, f.allow);
  return res;
}
}  // namespace

const std::vector<router::route_entry>& router::routes() {
  static const std::vector<route_entry> table{
      {http::verb::get, "/healthz", false, false, &router::health},
      {http::verb::get, "/readyz", false, false, &router::ready},
      {http::verb::get, "/metrics", false, false, &router::serve_metrics},
      {http::verb::post, "/v1/jobs", true, true, &router::submit, takes_body},
      {http::verb::post, "/v1/jobs/batch", true, true, &router::submit_batch,
       takes_body | rated_by_body},
      {http::verb::get, "/v1/jobs", true, false, &router::list, takes_query},
      {http::verb::get, "/v1/jobs/{id}", true, false, &router::get_job},
      {http::verb::post, "/v1/jobs/{id}/cancel", true, true, &router::cancel},
      {http::verb::post, "/v1/jobs/{id}/retry", true, true, &router::retry},
      {http::verb::post, "/v1/keys", true, true, &router::create_key, admin_only | takes_body},
      {http::verb::get, "/v1/keys", true, false, &router::list_keys, admin_only},
      {http::verb::delete_, "/v1/keys/{id}", true, true, &router::revoke_key, admin_only},
      {http::verb::get, "/v1/webhook-endpoints", true, false, &router::list_endpoints},
      {http::verb::get, "/v1/webhook-endpoints/{name}", true, false, &router::get_endpoint},
      {http::verb::put, "/v1/webhook-endpoints/{name}", true, true, &router::put_endpoint,
       admin_only | takes_body},
      {http::verb::delete_, "/v1/webhook-endpoints/{name}", true, true, &router::delete_endpoint,
       admin_only},
      {http::verb::get, "/v1/jobs/{id}/events", true, false, &router::job_events, admin_only},
      {http::verb::get, "/v1/admin/queues", true, false, &router::admin_queues,
       admin_only | platform_wide},
      {http::verb::get, "/v1/admin/history", true, false, &router::admin_history,
       admin_only | platform_wide | takes_query},
      {http::verb::get, "/v1/admin/settings", true, false, &router::admin_settings, admin_only},
      {http::verb::post, "/v1/admin/jobs/{action}", true, true, &router::admin_bulk,
       admin_only | takes_query},
      {http::verb::post, "/v1/admin/queues/{name}/pause", true, true, &router::pause_queue,
       admin_only | platform_wide},
      {http::verb::post, "/v1/admin/queues/{name}/resume", true, true, &router::resume_queue,
       admin_only | platform_wide},
      {http::verb::get, "/v1/queues", true, false, &router::list_queues, platform_wide},
  };
  return table;
}

boost::asio::awaitable<router::head_check> router::check_head(const http::request_header<>& head) {
  auto start = std::chrono::steady_clock::now();
  head_check out;
  auto target = boost::urls::parse_origin_form(head.target());
  if (!target) {
    out.refusal =
        problem_response(make_problem(400, "bad_request", "the request target is not a valid path"),
                         head.version(), false);
    co_return out;
  }
  // Called for a request with a body: refused here unless its route takes
  // one, so that no body is read for a route that would refuse it after
  // (a client without a key could otherwise make the server hold them).
  auto no_body = [&](bool takes_query) {
    return problem_response(
        make_problem(400, "unexpected_body",
                     takes_query
                         ? "this route takes no request body: its parameters go in the query"
                         : "this route takes no request body"),
        head.version(), false);
  };
  std::string path = target->path();
  if (path == "/admin" || path.starts_with("/admin/")) {
    out.refusal = no_body(false);
    co_return out;
  }
  auto found = find_route(head.method(), target->encoded_path());
  if (!found.entry) {
    out.refusal = no_route(found, head.version(), false);
  } else if (!found.entry->needs_key && !found.entry->has(takes_body)) {
    out.refusal = no_body(found.entry->has(takes_query));
  } else if (found.entry->needs_key) {
    std::optional<problem> refused;
    out.key_epoch = backend_.key_epoch();
    try {
      refused = co_await authorize(*found.entry, head, out.who);
    } catch (const std::exception& e) {
      // As handle() would answer; the lookup's deadline bounded the wait.
      failures_.write(log_level::warn, "request failed",
                      {{"target", std::string(head.target())}, {"error", e.what()}});
      refused = unavailable(e);
    }
    if (refused)
      out.refusal = problem_response(*refused, head.version(), false);
    else if (!found.entry->has(takes_body))
      out.refusal = no_body(found.entry->has(takes_query));
  }
  if (out.refusal) {
    out.who.reset();
    if (head.method() == http::verb::head) head_only(*out.refusal);
    observe(head.method(), found.name, out.refusal->result_int(), start);
  }
  co_return out;
}

boost::asio::awaitable<std::optional<problem>> router::authorize(const route_entry& r,
                                                                 const http::request_header<>& head,
                                                                 std::optional<principal>& who) {
  if (!who) {
    auto key = bearer_token(head);
    if (!key.empty()) {
      std::string k(key);
      who = co_await backend_.authenticate(k);
    }
  }
  if (!who && head.count(http::field::authorization) > 1)
    co_return make_problem(401, "unauthorized",
                           "send one Authorization field: Bearer <api key>, not several");
  if (!who) co_return make_problem(401, "unauthorized", "send Authorization: Bearer <api key>");
  if (r.writes && who->role == "viewer")
    co_return make_problem(403, "forbidden", "this key has the viewer role: it can only read");
  if (r.has(admin_only) && who->role != "admin")
    co_return make_problem(403, "forbidden", "this needs a key with the admin role");
  if (r.has(platform_wide) && !opts_.operator_tenants.empty() &&
      !opts_.operator_tenants.contains(who->tenant.value))
    co_return make_problem(403, "operator_only",
                           "queue figures and controls span every tenant: they need a key "
                           "of an operator tenant (JOBS_OPERATOR_TENANTS)");
  co_return std::nullopt;
}

boost::asio::awaitable<http_response> router::route(const http_request& req,
                                                    std::string_view& route_name,
                                                    const principal* checked) {
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target)
    co_return fail(make_problem(400, "bad_request", "the request target is not a valid path"));
  std::string path = target->path();
  if (path == "/admin" || path.starts_with("/admin/"))
    co_return serve_static(opts_.admin_dir, "/admin", path, req);

  auto found = find_route(req.method(), target->encoded_path());
  route_name = found.name;
  if (!found.entry) co_return no_route(found, req.version(), req.keep_alive());

  // Empty segments of the query (`/v1/jobs?`, `?limit=1&`, `?&&limit=1`)
  // name no parameter, and URL builders leave them: dropped, not refused.
  boost::urls::url cleaned;
  boost::urls::params_view query = target->params();
  if (auto q = target->encoded_query(); target->has_query() && has_empty_segment(q)) {
    cleaned = *target;
    auto ps = cleaned.params();
    for (auto it = ps.begin(); it != ps.end();) {
      auto p = *it;
      if (p.key.empty() && !p.has_value)
        it = ps.erase(it);
      else
        ++it;
    }
    if (ps.empty()) cleaned.remove_query();
    query = cleaned.params();
  }

  request_context ctx{req, std::nullopt, found.param, query};
  if (found.entry->needs_key) {
    if (checked) ctx.who = *checked;
    if (auto refused = co_await authorize(*found.entry, req, ctx.who)) co_return fail(*refused);
    ctx.key_hash = hash_api_key(bearer_token(req));
    if (!found.entry->has(rated_by_body))
      if (auto refused = limit(ctx, 1)) co_return std::move(*refused);
  }
  // (Probes and /metrics ignore their query: they never refuse one.)
  if (found.entry->needs_key)
    if (auto bad = refused_input(*found.entry, found.param, ctx.query, req.body())) {
      auto res = fail(*bad);
      quota_fields(res, ctx);
      co_return res;
    }
  auto res = co_await (this->*found.entry->fn)(ctx);
  quota_fields(res, ctx);
  co_return res;
}

boost::asio::awaitable<http_response> router::health(const request_context& ctx) {
  co_return json_response(http::status::ok, R"({"status":"ok"})", ctx.req);
}

boost::asio::awaitable<http_response> router::ready(const request_context& ctx) {
  auto rd = co_await backend_.ready();
  auto body =
      fmt::format(R"({{"status":"{}","database":{},"broker":{},"broker_state":"{}"}})",
                  rd.ok() ? "ready" : "not ready", rd.database, rd.broker(), rd.broker_state);
  auto res =
      json_response(rd.ok() ? http::status::ok : http::status::service_unavailable, body, ctx.req);
  if (!rd.ok()) res.set(http::field::retry_after, "1");
  co_return res;
}

}  // namespace jobs
