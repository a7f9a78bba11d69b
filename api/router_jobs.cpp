// The job and key routes' handlers (api/router.hpp): read, retry, cancel,
// submit (one or a batch), list, and the API keys.
#include "api/router.hpp"

#include "api/job_filter.hpp"
#include "common/trace.hpp"

#include <fmt/format.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

namespace jobs {

namespace {
// The trace of the request's `traceparent` header, or a new one.
std::string request_trace_id(const http_request& req) {
  if (auto h = req.find("traceparent"); h != req.end())
    if (auto id = trace_id_from_traceparent(h->value())) return *id;
  return new_trace_id();
}

constexpr std::string_view idempotency_key_header = "Idempotency-Key";
constexpr std::string_view idempotent_replayed_header = "Idempotent-Replayed";
constexpr std::string_view ratelimit_policy_header = "RateLimit-Policy";
constexpr std::string_view ratelimit_header = "RateLimit";
}  // namespace

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
  retry_reply reply;
  if (is_uuid(id.value)) reply = co_await backend_.retry_job(ctx.who->tenant, id);
  if (reply.outcome.result == retry_result::retried)
    co_return json_response(http::status::accepted, std::move(reply.job), ctx.req);
  auto p = reply.outcome.result == retry_result::not_found
               ? make_problem(404, "not_found", "no job with this id")
               : make_problem(
                     409, "not_retryable",
                     fmt::format("the job's state is {}: only a dead or failed job can be retried",
                                 to_string(reply.outcome.state)));
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
                       fmt::format("the job is already final ({}): only a scheduled, queued, "
                                   "failed or running job can be cancelled",
                                   to_string(reply.outcome.state))),
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
  // The rate limit is taken here (rated_by_body): one token per job, all at
  // once, so that a 429's Retry-After is the wait for exactly what a retry
  // takes; a request refused before its jobs are counted takes one.
  auto refuse = [&](http_response res) {
    if (auto limited = limit(ctx, 1)) return std::move(*limited);
    return res;
  };
  auto fail = [&](const problem& p) {
    return refuse(problem_response(p, req.version(), req.keep_alive()));
  };
  if (auto refused = require_json(req)) co_return refuse(std::move(*refused));
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
  // A batch costing more than a bucket can hold would get 429 for ever:
  // refuse it with a status no client retries, and say how to split it,
  // whatever the bucket holds now.
  if (auto most = opts_.rates.max_request_cost();
      most > 0 && static_cast<double>(jobs.size()) > most) {
    auto which =
        opts_.rates.key_per_second > 0 && opts_.rates.key_burst <= most ? "API key's" : "tenant's";
    auto burst = static_cast<long long>(most);
    co_return problem_response(
        make_problem(
            413, "batch_over_rate_burst",
            fmt::format("a batch of {} jobs can never pass this {} rate limit, whose burst is {} "
                        "jobs: split it into batches of at most {} jobs (sent unchanged, it gets "
                        "this answer again)",
                        jobs.size(), which, burst, burst)),
        req.version(), req.keep_alive());
  }
  if (auto refused = limit(ctx, static_cast<double>(jobs.size()))) co_return std::move(*refused);
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
  auto detail =
      not_accepted == jobs.size()
          ? fmt::format("none of the {} jobs was accepted (see jobs[].error)", jobs.size())
          : fmt::format(
                "{} of {} jobs {} not accepted (see jobs[].error); the other {} {} "
                "accepted and will run",
                not_accepted, jobs.size(), not_accepted == 1 ? "was" : "were",
                jobs.size() - not_accepted, jobs.size() - not_accepted == 1 ? "was" : "were");
  auto p = make_problem(refused->status, "batch_incomplete", std::move(detail));
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
  rate_limiter::quotas seen;
  auto refused =
      limiter_.take(ctx.key_hash, ctx.who->tenant.value, n, rate_limiter::clock::now(), &seen);
  if (seen.n > 0) ctx.quotas = seen;
  if (!refused) return std::nullopt;
  auto p = make_problem(429, "rate_limited",
                        fmt::format("over this {}'s request rate; retry after the Retry-After "
                                    "seconds",
                                    refused->limit));
  p.retry_after_s = static_cast<int>((refused->wait.count() + 999) / 1000);
  auto res = problem_response(p, ctx.req.version(), ctx.req.keep_alive());
  quota_fields(res, ctx);
  return res;
}

void router::quota_fields(http_response& res, const request_context& ctx) const {
  if (!ctx.quotas || res.count(ratelimit_header)) return;
  res.set(ratelimit_policy_header, limiter_.policy_field());
  res.set(ratelimit_header, rate_limiter::field(*ctx.quotas));
}

boost::asio::awaitable<http_response> router::create_key(const request_context& ctx) {
  const auto& req = ctx.req;
  auto fail = [&](const problem& p) {
    return problem_response(p, req.version(), req.keep_alive());
  };
  // No body at all is `{}`, with or without a Content-Type.
  if (!req.body().empty())
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
  std::optional<std::string> key;
  bool last = false;
  try {
    key = co_await backend_.revoke_key(ctx.who->tenant, ctx.param);
  } catch (const last_admin_key&) {
    last = true;
  }
  if (last)
    co_return problem_response(
        make_problem(409, "last_admin_key",
                     "no other admin key of the tenant lasts as long as this one (without an "
                     "expiry, or expiring no sooner): revoking it would lock the tenant out of "
                     "its keys; create another admin key first (an operator can also run "
                     "jobs-api create-key on the host)"),
        ctx.req.version(), ctx.req.keep_alive());
  if (!key)
    co_return problem_response(make_problem(404, "not_found", "no key with this id"),
                               ctx.req.version(), ctx.req.keep_alive());
  co_return json_response(http::status::ok, std::move(*key), ctx.req);
}

}  // namespace jobs
