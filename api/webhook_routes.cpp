// The router's webhook-endpoint routes (api/webhook_endpoints.hpp).
#include "api/router.hpp"

namespace jobs {

namespace {
problem bad_name() {
  auto p = make_problem(404, "not_found",
                        "no such webhook endpoint (names are 1 to 64 of A-Z a-z 0-9 _ . -)");
  return p;
}
}  // namespace

boost::asio::awaitable<http_response> router::put_endpoint(const request_context& ctx) {
  const auto& req = ctx.req;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  if (ctx.who->role != "admin")
    co_return fail(make_problem(403, "forbidden", "only admin keys manage webhook endpoints"));
  if (!is_endpoint_name(ctx.param)) {
    // PUT names the endpoint it creates: a name that cannot be one is bad input.
    co_return fail(
        make_problem(400, "invalid_field",
                     "the endpoint's name in the path must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  }
  if (auto refused = require_json(req)) co_return std::move(*refused);
  auto parsed = parse_webhook_endpoint(req.body());
  if (auto* p = std::get_if<problem>(&parsed)) co_return fail(*p);
  const auto& spec = std::get<webhook_endpoint_spec>(parsed);
  auto [created, body] = co_await backend_.put_webhook_endpoint(ctx.who->tenant, ctx.param, spec);
  co_return json_response(created ? http::status::created : http::status::ok, std::move(body), req);
}

boost::asio::awaitable<http_response> router::get_endpoint(const request_context& ctx) {
  std::optional<std::string> ep;
  if (is_endpoint_name(ctx.param))
    ep = co_await backend_.find_webhook_endpoint(ctx.who->tenant, ctx.param);
  if (!ep) co_return problem_response(bad_name(), ctx.req.version(), ctx.req.keep_alive());
  co_return json_response(http::status::ok, std::move(*ep), ctx.req);
}

boost::asio::awaitable<http_response> router::delete_endpoint(const request_context& ctx) {
  std::optional<std::string> ep;
  if (is_endpoint_name(ctx.param))
    ep = co_await backend_.delete_webhook_endpoint(ctx.who->tenant, ctx.param);
  if (!ep) co_return problem_response(bad_name(), ctx.req.version(), ctx.req.keep_alive());
  co_return json_response(http::status::ok, std::move(*ep), ctx.req);
}

boost::asio::awaitable<http_response> router::list_endpoints(const request_context& ctx) {
  auto list = co_await backend_.list_webhook_endpoints(ctx.who->tenant);
  co_return json_response(http::status::ok, std::move(list), ctx.req);
}

}  // namespace jobs
