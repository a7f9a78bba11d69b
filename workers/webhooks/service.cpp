#include "common/log.hpp"
#include "common/text.hpp"
#include "common/webhook_signature.hpp"
#include "workers/webhooks/endpoints.hpp"
#include "workers/webhooks/http_client.hpp"
#include "workers/webhooks/policy.hpp"
#include "workers/webhooks/webhooks.hpp"

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/json/object.hpp>

#include <thread>

namespace jobs::webhooks {

namespace asio = boost::asio;
using sys_clock = std::chrono::system_clock;

// A result keeps the first 4 KiB of the answer's body, as text.
constexpr std::size_t stored_body = 4096;

struct webhook_service::impl {
  webhook_options opts;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  http_client client;
  endpoint_store endpoints;
  std::thread io;

  explicit impl(webhook_options o)
      : opts(std::move(o)),
        client(ioc, client_options{.allow = allow_list::parse(opts.allow),
                                   .ca_file = opts.ca_file,
                                   .connect_timeout = opts.connect_timeout,
                                   .response_limit = opts.response_limit,
                                   .stored_body = stored_body,
                                   .idle_per_origin = opts.idle_per_origin}),
        endpoints(opts.pg_url, opts.breaker_failures, opts.breaker_cooldown) {
    io = std::thread([this] { ioc.run(); });
  }
  ~impl() {
    work.reset();
    ioc.stop();
    io.join();
  }

  struct job {
    std::string id, tenant, endpoint, queue;
    std::optional<breaker_time> trial;  // this delivery is the breaker's trial
    int attempt = 1;
    const std::atomic<bool>* stop = nullptr;
    retry_schedule schedule;
    outgoing req;
    completion done;
  };

  handler_result outcome(const job& j, const http_result& r) {
    verdict v =
        r.fail == http_result::failure::none ? classify_status(r.status)
        : r.fail == http_result::failure::refused || r.fail == http_result::failure::cancelled
            ? verdict::permanent
            : verdict::retryable;
    // A trial's end (endpoints.hpp): a success closes the breaker in its
    // commit hook, a failure pauses it below. An answer that is neither
    // closes it too (the endpoint is up); a request never sent gives the
    // lease back. One stopped (a cancel, the job's own timeout, the worker
    // stopping) ends with its lease: what the endpoint would have said is
    // not known, and a trial at once after it would be stopped the same way.
    if (j.trial && r.fail == http_result::failure::none && v == verdict::permanent)
      endpoints.reset_later(j.tenant, j.endpoint, j.queue);
    if (j.trial && r.fail == http_result::failure::refused)
      endpoints.release_trial(j.tenant, j.endpoint, j.queue, *j.trial);
    auto latency = r.latency.count();
    if (r.fail == http_result::failure::refused)
      return handler_error::permanent("destination refused: " + r.error);
    if (r.fail == http_result::failure::cancelled) return handler_error::retryable(r.error);
    if (v == verdict::success)
      return boost::json::value(boost::json::object{{"status", r.status},
                                                    {"latency_ms", latency},
                                                    {"body", utf8_text(r.body, stored_body)},
                                                    {"webhook_id", j.id}});
    auto excerpt = body_excerpt(r.body);
    auto what = r.fail == http_result::failure::none
                    ? fmt::format("HTTP {} after {} ms{}{}", r.status, latency,
                                  r.status / 100 == 3 ? " (redirects are not followed)" : "",
                                  excerpt.empty() ? "" : ": " + excerpt)
                    : r.error;
    if (v == verdict::permanent) return handler_error::permanent(what);
    endpoints.record_failure(j.tenant, j.endpoint, j.queue);
    auto now = sys_clock::now();
    std::chrono::milliseconds gap = j.schedule.after(j.attempt);
    if (!r.retry_after.empty())
      if (auto ra = parse_retry_after(r.retry_after, now)) gap = *ra;
    return handler_error::retryable_at(what, now + gap);
  }

  asio::awaitable<void> run(std::shared_ptr<job> j) {
    http_result r;
    try {
      r = co_await client.send(j->req, j->stop);
    } catch (const std::exception& e) {
      r.fail = http_result::failure::io;
      r.error = e.what();
    }
    j->done(outcome(*j, r));
  }
};

webhook_service::webhook_service(webhook_options o) : impl_(std::make_unique<impl>(std::move(o))) {}

webhook_service::~webhook_service() = default;

void webhook_service::deliver(const job_context& ctx, completion done) {
  auto d = parse_delivery(ctx.payload, impl_->opts.timeout);
  if (auto* why = std::get_if<std::string>(&d)) return done(handler_error::permanent(*why));
  auto& del = std::get<delivery>(d);
  // A refused address is final whatever the endpoint: say so on the first attempt.
  if (auto why = impl_->client.refuses_literal(del.url.host))
    return done(handler_error::permanent("destination refused: " + *why));
  std::string tenant(ctx.tenant);
  auto ep = impl_->endpoints.find(tenant, del.endpoint);
  auto now = sys_clock::now();
  // Nothing unsigned is sent; but the tenant can still create the endpoint
  // (or fix its secret), so the job is retried on the standard schedule.
  auto later = now + retry_schedule::standard().after(ctx.attempt);
  if (!ep)
    return done(handler_error::retryable_at(
        fmt::format("no webhook endpoint {:?} for this tenant: create it with PUT "
                    "/v1/webhook-endpoints/{} and its secret",
                    del.endpoint, del.endpoint),
        later));
  if (ep->keys.empty())
    return done(handler_error::retryable_at(
        "webhook endpoint " + del.endpoint + " has no usable secret", later));
  // The circuit breaker (endpoints.hpp). Taking the trial can lose a race
  // with another worker's: then the endpoint is read again, and once more.
  std::optional<breaker_time> trial;
  for (int tries = 0; !trial; ++tries) {
    auto g = gate(*ep, impl_->endpoints.threshold(), std::chrono::steady_clock::now());
    if (g == breaker_gate::send) break;
    if (g == breaker_gate::wait_pause)
      return done(handler_error::snooze(
          "endpoint " + del.endpoint + " paused by its circuit breaker", ep->paused_until->at));
    if (g == breaker_gate::wait_trial)
      return done(handler_error::snooze(
          "endpoint " + del.endpoint + " waits for its circuit breaker's trial delivery",
          ep->trial_until->at));
    if (tries == 2)  // a second from now by PostgreSQL's clock, as the scheduler reads it
      return done(handler_error::snooze(
          "endpoint " + del.endpoint + " waits for its circuit breaker's trial delivery",
          ep->db_now + std::chrono::seconds(1)));
    auto lease = impl_->opts.connect_timeout + del.timeout + std::chrono::seconds(1);
    trial = impl_->endpoints.take_trial(tenant, del.endpoint, lease);
    if (!trial) {
      ep = impl_->endpoints.find(tenant, del.endpoint);
      if (!ep || ep->keys.empty())
        return done(handler_error::retryable_at(
            "webhook endpoint " + del.endpoint + " changed while it was read: try again", later));
    }
  }
  if (ep->consecutive_failures > 0 || trial)
    ctx.on_success_commit([store = &impl_->endpoints, tenant, name = del.endpoint,
                           queue = std::string(ctx.queue)](pqxx::transaction_base& tx) {
      store->reset(tx, tenant, name, queue);
    });

  auto j = std::make_shared<impl::job>();
  j->id = std::string(ctx.id);
  j->tenant = tenant;
  j->endpoint = del.endpoint;
  j->queue = std::string(ctx.queue);
  j->trial = trial;
  j->attempt = ctx.attempt;
  j->stop = ctx.cancel;
  j->schedule = ep->schedule ? *ep->schedule : retry_schedule::standard();
  j->done = std::move(done);
  auto ts = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  j->req.url = del.url;
  j->req.put = del.put;
  j->req.timeout = del.timeout;
  j->req.headers = std::move(del.headers);
  j->req.headers.emplace_back("webhook-id", j->id);
  j->req.headers.emplace_back("webhook-timestamp", std::to_string(ts));
  j->req.headers.emplace_back("webhook-signature", signature_header(j->id, ts, del.body, ep->keys));
  j->req.body = std::move(del.body);
  asio::co_spawn(impl_->ioc, impl_->run(std::move(j)), asio::detached);
}

void register_webhook_handlers(handler_registry& r, webhook_service& s) {
  r.add_async("webhooks", "deliver",
              [&s](const job_context& ctx, completion done) { s.deliver(ctx, std::move(done)); });
}

}  // namespace jobs::webhooks
