#pragma once
// The HTTP API without sockets: request in, response out (Beast's
// handle_request split), so unit tests drive it directly.
//
//   GET  /healthz                 200 while the process runs
//   GET  /readyz                  200 when PostgreSQL and RabbitMQ are reachable, else 503
//   POST /v1/jobs                 submit (202 {id, state, links}); with an Idempotency-Key
//                                 already used for the same request: 200 with that job
//                                 and `Idempotent-Replayed: true`; for another request:
//                                 409 idempotency_key_reused
//   GET  /v1/jobs/{id}            one job of the caller's tenant (404 otherwise)
//   GET  /v1/jobs?queue=&state=&limit=&cursor=   the tenant's jobs, newest first
//   POST /v1/jobs/{id}/retry      a dead or failed job runs again (202), else 409
//   POST /v1/jobs/{id}/cancel     200 {job}: cancelled now (it was scheduled, queued or
//                                 failed); 202 {job}: running, its worker is asked to
//                                 stop; 409 not_cancellable: already final
//   PUT  /v1/webhook-endpoints/{name}, GET /v1/webhook-endpoints[/{name}]
//                                 the tenant's webhook endpoints (api/webhook_endpoints.hpp)
//
// Every /v1 route needs `Authorization: Bearer <key>`; routes that write
// refuse keys with the `viewer` role (403 forbidden). Errors are RFC 9457
// problem+json (api/submission.hpp lists the codes).
//
// Thread-safety: handle() may run concurrently on many coroutines.

#include "api/backend.hpp"
#include "api/submission.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/params_view.hpp>

#include <vector>

namespace jobs {

namespace http = boost::beast::http;
using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

struct router_options {
  submission_limits limits;
  int list_limit_max = 500;
};

class router {
 public:
  router(api_backend& backend, const schema_registry& schemas, router_options o);
  boost::asio::awaitable<http_response> handle(const http_request& req);

  /// A problem+json response (also used by the server for transport errors).
  static http_response problem_response(const problem& p, unsigned version, bool keep_alive);

 private:
  struct request_context {
    const http_request& req;
    std::optional<principal> who;  ///< set on routes that need a key
    std::string param;             ///< the {id} segment, if the route has one
    boost::urls::params_view query;
  };
  using handler = boost::asio::awaitable<http_response> (router::*)(const request_context&);

 public:
  struct route_entry {
    http::verb method;
    std::string_view pattern;  ///< "/v1/jobs/{id}": a {name} matches one path segment
    bool needs_key;
    bool writes;  ///< refused (403) to viewer keys
    handler fn;
  };
  /// The route table (the OpenAPI document must describe exactly these).
  static const std::vector<route_entry>& routes();

 private:
  boost::asio::awaitable<http_response> route(const http_request& req);
  boost::asio::awaitable<http_response> health(const request_context& ctx);
  boost::asio::awaitable<http_response> ready(const request_context& ctx);
  boost::asio::awaitable<http_response> submit(const request_context& ctx);
  boost::asio::awaitable<http_response> list(const request_context& ctx);
  boost::asio::awaitable<http_response> get_job(const request_context& ctx);
  boost::asio::awaitable<http_response> cancel(const request_context& ctx);
  boost::asio::awaitable<http_response> retry(const request_context& ctx);
  // api/webhook_routes.cpp
  boost::asio::awaitable<http_response> put_endpoint(const request_context& ctx);
  boost::asio::awaitable<http_response> get_endpoint(const request_context& ctx);
  boost::asio::awaitable<http_response> list_endpoints(const request_context& ctx);

  api_backend& backend_;
  const schema_registry& schemas_;
  router_options opts_;
};

}  // namespace jobs
