#pragma once
// The HTTP API without sockets: request in, response out (Beast's
// handle_request split), so unit tests drive it directly.
//
//   GET  /healthz                 200 while the process runs
//   GET  /readyz                  200 when PostgreSQL and RabbitMQ are reachable, else 503
//   GET  /metrics                 Prometheus text format (api/api_metrics.hpp); no key, or
//                                 the bearer JOBS_METRICS_TOKEN when that is set
//   POST /v1/jobs                 submit (202 {id, state, links}); with an Idempotency-Key
//                                 already used for the same request: 200 with that job
//                                 and `Idempotent-Replayed: true`; for another request:
//                                 409 idempotency_key_reused
//   POST /v1/jobs/batch           up to JOBS_HTTP_BATCH_MAX_JOBS submissions in one request
//                                 (api/batch.hpp): 202 {jobs: [{id, state, links}, ...]}
//                                 in order when every job was accepted (a member
//                                 whose idempotency_key names a job carries
//                                 "replayed": true); when some were not, the status of
//                                 their problem (503 or 409) with code batch_incomplete and
//                                 `jobs` saying which were accepted and which not
//   GET  /v1/jobs/{id}            one job of the caller's tenant (404 otherwise)
//   GET  /v1/jobs?queue=&state=&limit=&cursor=   the tenant's jobs, newest first
//   POST /v1/jobs/{id}/retry      a dead or failed job runs again (202), else 409
//   POST /v1/keys                 (admin) a key of the caller's tenant: 201 with the key,
//                                 shown this once; GET /v1/keys lists them (no keys);
//   DELETE /v1/keys/{id}          (admin) revokes one: 200 with it, at once on every API
//                                 process
//   POST /v1/jobs/{id}/cancel     200 {job}: cancelled now (it was scheduled, queued or
//                                 failed); 202 {job}: running, its worker is asked to
//                                 stop; 409 not_cancellable: already final
//   GET  /v1/queues               per queue: depth, consumers, workers running and desired,
//                                 completion rate, oldest waiting age (any role;
//                                 common/queue_stats.hpp)
//   PUT  /v1/webhook-endpoints/{name}, GET /v1/webhook-endpoints[/{name}]
//                                 the tenant's webhook endpoints (api/webhook_endpoints.hpp)
//   GET  /v1/jobs/{id}/events, GET /v1/admin/queues, GET /v1/admin/history,
//   GET  /v1/admin/settings, POST /v1/admin/jobs/{cancel|retry|requeue},
//   POST /v1/admin/queues/{name}/{pause|resume}
//                                 (admin) the dashboard's API (api/admin_routes.cpp)
//   GET  /admin/...               the dashboard's static files (api/static_files.hpp)
//
// Every /v1 route needs `Authorization: Bearer <key>`; routes that write
// refuse keys with the `viewer` role (403 forbidden), key management needs
// `admin`. Requests are rate limited per key and per tenant (429
// rate_limited with Retry-After; api/rate_limit.hpp); a batch of more jobs
// than a burst, which could never pass, is 413 batch_over_rate_burst. Errors are RFC 9457
// problem+json (api/submission.hpp lists the codes).
//
// Thread-safety: handle() may run concurrently on many coroutines.
//
// api/router.cpp: authentication, dispatch and responses; api/router_jobs.cpp:
// the job and key handlers; admin_routes.cpp, webhook_routes.cpp,
// queues_route.cpp and metrics_route.cpp: the others.

#include "api/backend.hpp"
#include "api/batch.hpp"
#include "api/rate_limit.hpp"
#include "api/submission.hpp"
#include "common/log.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/params_view.hpp>

#include <chrono>
#include <optional>
#include <set>
#include <vector>

namespace jobs {

namespace http = boost::beast::http;
using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

struct router_options {
  submission_limits limits;
  batch_limits batch;
  rate_limits rates;  ///< all off unless set (the API's defaults are in common/config.hpp)
  int list_limit_max = 500;
  std::string admin_dir;            ///< the dashboard's files; empty: /admin/ is 404
  std::string admin_broker_ui_url;  ///< shown by GET /v1/admin/settings
  /// Tenants whose keys may use the platform-wide routes (route_flag::platform_wide);
  /// empty: every tenant's.
  std::set<std::string> operator_tenants;
  api_metrics* metrics = nullptr;  ///< null: GET /metrics answers 404, nothing is measured
  std::string metrics_token;       ///< set: GET /metrics needs `Authorization: Bearer <it>`
};

class router {
 public:
  router(api_backend& backend, const schema_registry& schemas, router_options o);
  /// `checked`: the principal check_head() found for this request's key,
  /// used instead of looking the key up again.
  boost::asio::awaitable<http_response> handle(const http_request& req,
                                               const principal* checked = nullptr);

  /// What check_head() decided from a request's head.
  struct head_check {
    std::optional<http_response> refusal;  ///< the final answer; the body is not wanted
    std::optional<principal> who;          ///< the key's principal, on a route that needs one
    std::uint64_t key_epoch = 0;           ///< api_backend::key_epoch() before the lookup
  };
  /// The principal check_head() found, unless keys were revoked since its
  /// lookup began (the body may take the read timeout to arrive): then
  /// null, and handle() looks the key up again.
  const principal* still_valid(const head_check& c) const {
    return c.who && backend_.key_epoch() == c.key_epoch ? &*c.who : nullptr;
  }
  /// What handle() would refuse from the request's head alone: an invalid
  /// target (400), no such route (404), a method the route does not take
  /// (405 with Allow), a missing, unknown, expired or revoked key (401), a
  /// key whose role or tenant may not use the route (403), or 503 when the
  /// key cannot be looked up (within the lookup's own deadline). The server
  /// asks before it reads any request's body (and before answering `Expect:
  /// 100-continue`), so a refused request's body is never read; otherwise it
  /// passes `who` to handle(). Rate limits and the body are left to handle().
  boost::asio::awaitable<head_check> check_head(const http::request_header<>& head);

  /// A problem+json response (also used by the server for transport errors).
  static http_response problem_response(const problem& p, unsigned version, bool keep_alive);
  /// The answer to HEAD: the headers GET's answer has (its Content-Length
  /// too), no body.
  static void head_only(http_response& res);
  /// A JSON response with the request's HTTP version and keep-alive.
  static http_response json_response(http::status s, std::string body, const http_request& req);
  /// Content-Type names application/json (any case, parameters allowed).
  static bool is_json_content_type(std::string_view content_type);
  /// 415 unsupported_media_type unless the request's Content-Type is JSON.
  static std::optional<http_response> require_json(const http_request& req);

 private:
  struct request_context {
    const http_request& req;
    std::optional<principal> who;  ///< set on routes that need a key
    std::string param;             ///< the {id} segment, if the route has one
    boost::urls::params_view query;
    std::string key_hash = {};  ///< of the request's key, on routes that need one
    /// The buckets the request drew from (limit()): its response's RateLimit fields.
    mutable std::optional<rate_limiter::quotas> quotas = {};
  };
  using handler = boost::asio::awaitable<http_response> (router::*)(const request_context&);

 public:
  /// Who may call a route, and what it takes besides its path.
  enum route_flag : unsigned {
    admin_only = 1,      ///< refused (403) to submitter and viewer keys
    platform_wide = 2,   ///< figures or actions over every tenant: operator tenants only
    takes_body = 4,      ///< a request body; on any other route one is 400 unexpected_body
    takes_query = 8,     ///< query parameters, which its handler checks; on any other
                         ///< route one is 400 unknown_field
    rated_by_body = 16,  ///< its handler takes the rate limit's tokens (one per job of a
                         ///< batch) once it has read the body, not the router (one)
  };
  struct route_entry {
    http::verb method;
    std::string_view pattern;  ///< "/v1/jobs/{id}": a {name} matches one path segment
    bool needs_key;
    bool writes;  ///< refused (403) to viewer keys
    handler fn;
    unsigned flags = 0;  ///< route_flag bits
    bool has(route_flag f) const { return (flags & f) != 0; }
  };
  /// The route table (the OpenAPI document must describe exactly these).
  static const std::vector<route_entry>& routes();

 private:
  /// Sets `route_name` to the matched route's template.
  boost::asio::awaitable<http_response> route(const http_request& req, std::string_view& route_name,
                                              const principal* checked);
  /// The principal of the request's key for route `r` (`who`, looked up
  /// unless already set), or the problem: 401 unauthorized, 403.
  boost::asio::awaitable<std::optional<problem>> authorize(const route_entry& r,
                                                           const http::request_header<>& head,
                                                           std::optional<principal>& who);
  void observe(http::verb method, std::string_view route_name, unsigned status,
               std::chrono::steady_clock::time_point start);
  boost::asio::awaitable<http_response> serve_metrics(const request_context& ctx);
  boost::asio::awaitable<http_response> health(const request_context& ctx);
  boost::asio::awaitable<http_response> ready(const request_context& ctx);
  boost::asio::awaitable<http_response> submit(const request_context& ctx);
  boost::asio::awaitable<http_response> submit_batch(const request_context& ctx);
  boost::asio::awaitable<http_response> list(const request_context& ctx);
  boost::asio::awaitable<http_response> get_job(const request_context& ctx);
  boost::asio::awaitable<http_response> cancel(const request_context& ctx);
  boost::asio::awaitable<http_response> retry(const request_context& ctx);
  boost::asio::awaitable<http_response> create_key(const request_context& ctx);
  boost::asio::awaitable<http_response> list_keys(const request_context& ctx);
  boost::asio::awaitable<http_response> revoke_key(const request_context& ctx);
  /// Takes `n` tokens for the request's key and tenant; the 429 when there
  /// are not enough.
  std::optional<http_response> limit(const request_context& ctx, double n);
  /// RateLimit-Policy and RateLimit on a response to a request limit() saw.
  void quota_fields(http_response& res, const request_context& ctx) const;
  // api/webhook_routes.cpp
  boost::asio::awaitable<http_response> put_endpoint(const request_context& ctx);
  boost::asio::awaitable<http_response> delete_endpoint(const request_context& ctx);
  boost::asio::awaitable<http_response> get_endpoint(const request_context& ctx);
  boost::asio::awaitable<http_response> list_endpoints(const request_context& ctx);
  // api/admin_routes.cpp
  boost::asio::awaitable<http_response> job_events(const request_context& ctx);
  boost::asio::awaitable<http_response> admin_queues(const request_context& ctx);
  boost::asio::awaitable<http_response> admin_history(const request_context& ctx);
  boost::asio::awaitable<http_response> admin_settings(const request_context& ctx);
  boost::asio::awaitable<http_response> admin_bulk(const request_context& ctx);
  boost::asio::awaitable<http_response> pause_queue(const request_context& ctx);
  boost::asio::awaitable<http_response> resume_queue(const request_context& ctx);
  // api/queues_route.cpp
  boost::asio::awaitable<http_response> list_queues(const request_context& ctx);

  api_backend& backend_;
  const schema_registry& schemas_;
  router_options opts_;
  rate_limiter limiter_;
  /// "request failed": while a server is away every request fails alike.
  log_sampler failures_{std::chrono::seconds(10)};
};

}  // namespace jobs
