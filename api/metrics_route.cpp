// GET /metrics (api/api_metrics.hpp lists what it serves).
#include "api/router.hpp"
#include "common/log.hpp"
#include "common/metrics_server.hpp"

namespace jobs {

boost::asio::awaitable<http_response> router::serve_metrics(const request_context& ctx) {
  const auto& req = ctx.req;
  if (!opts_.metrics)
    co_return problem_response(make_problem(404, "not_found", "no such route"), req.version(),
                               req.keep_alive());
  if (!metrics_token_ok(req[http::field::authorization], opts_.metrics_token)) {
    co_return problem_response(
        make_problem(401, "unauthorized", "send Authorization: Bearer <JOBS_METRICS_TOKEN>"),
        req.version(), req.keep_alive());
  }
  try {
    co_await backend_.refresh_metrics(*opts_.metrics);
  } catch (const std::exception& e) {
    // The other metrics are still worth serving; the queue gauges keep their last values.
    log_warn("queue metrics not refreshed", {{"error", e.what()}});
  }
  http_response res{http::status::ok, req.version()};
  res.set(http::field::content_type, metrics::content_type);
  res.keep_alive(req.keep_alive());
  res.body() = opts_.metrics->registry.render();
  res.prepare_payload();
  co_return res;
}

}  // namespace jobs
