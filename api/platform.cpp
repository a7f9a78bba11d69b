#include "api/platform.hpp"

#include "api/async.hpp"
#include "api/submission.hpp"

#include <algorithm>

namespace jobs {

namespace {
// A cancel or a retry in a transaction of its own, then the job as it is
// after it (unless there was none).
template <class Reply, class Change>
Reply change_then_read(pqxx::connection& c, const tenant_id& t, const job_id& id, Change change) {
  Reply r;
  {
    pqxx::work w(c);
    r.outcome = change(w, t, id);
    w.commit();
  }
  if (r.outcome.result != decltype(r.outcome.result)::not_found)
    r.job = find_job_json(c, t, id).value_or("");
  return r;
}
}  // namespace

platform_backend::platform_backend(db_pool& reads, submitter& writes, publisher& pub,
                                   std::chrono::milliseconds auth_cache,
                                   std::chrono::milliseconds auth_most)
    : reads_(reads), writes_(writes), pub_(pub), auth_ttl_(auth_cache), auth_most_(auth_most) {}

boost::asio::awaitable<std::optional<principal>> platform_backend::authenticate(
    const std::string& api_key) {
  // A key this platform never makes is unknown without asking PostgreSQL.
  if (!well_formed_api_key(api_key)) co_return std::nullopt;
  // The cache is keyed by the hash, so the key itself is never kept.
  auto hash = hash_api_key(api_key);
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(mu_);
    for (auto* cache : {&auth_cache_, &miss_cache_})
      if (auto it = cache->find(hash); it != cache->end() && it->second.until > now)
        co_return it->second.who;
  }
  auto query = [key = api_key](pqxx::connection& c) { return authenticate_key(c, key); };
  auto epoch = key_epoch_.load();
  auto who = co_await db_call(reads_, query, auth_most_);
  std::lock_guard lk(mu_);
  // Keys were forgotten while the lookup ran: it may have read the key
  // before its revocation committed, and must not put it back in the cache.
  if (key_epoch_.load() != epoch) co_return who;
  // Unknown keys apart: a flood of made-up ones cannot evict the real ones.
  auto& cache = who ? auth_cache_ : miss_cache_;
  if (cache.size() >= auth_cache_max) cache.clear();
  // Cached no longer than the key lives.
  auto ttl = std::chrono::duration_cast<std::chrono::steady_clock::duration>(auth_ttl_);
  if (who && who->expires_in_s)
    ttl = std::min(ttl, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(*who->expires_in_s)));
  cache[hash] = {who, now + ttl};
  co_return who;
}

problem platform_backend::broker_refusal() const {
  if (pub_.connected() && pub_.blocked())
    return make_problem(503, "unavailable",
                        "the message broker takes no messages now (a memory or disk alarm); "
                        "retry later");
  if (pub_.connected())
    return make_problem(503, "unavailable",
                        "the message broker did not confirm a message in time and has confirmed "
                        "nothing since; retry later");
  return make_problem(503, "unavailable", "the message broker is unavailable; retry later");
}

boost::asio::awaitable<submit_result> platform_backend::submit(const new_job& job) {
  // Don't record what cannot be published now.
  if (job.state == job_state::queued && !pub_.accepting()) co_return broker_refusal();
  auto start = [this, &job](std::function<void(submit_result)> done) {
    writes_.submit(job, std::move(done));
  };
  auto result = co_await await_callback<submit_result>(std::move(start));
  co_return result;
}

boost::asio::awaitable<std::vector<submit_result>> platform_backend::submit_many(
    const std::vector<new_job>& jobs) {
  bool publishes = std::any_of(jobs.begin(), jobs.end(),
                               [](const new_job& j) { return j.state == job_state::queued; });
  if (publishes && !pub_.accepting()) {
    std::vector<submit_result> refused(jobs.size(), broker_refusal());
    co_return refused;
  }
  // Each job completes on its own (at its commit or its confirm); the last
  // one to complete answers the request.
  struct gather {
    std::mutex mu;
    std::vector<submit_result> results;
    std::size_t pending;
    std::function<void(std::vector<submit_result>)> done;
  };
  auto start = [this, &jobs](std::function<void(std::vector<submit_result>)> done) {
    auto g = std::make_shared<gather>();
    g->results.resize(jobs.size());
    g->pending = jobs.size();
    g->done = std::move(done);
    std::vector<submitter::done_fn> each;
    each.reserve(jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i)
      each.push_back([g, i](submit_result r) {
        std::unique_lock lk(g->mu);
        g->results[i] = std::move(r);
        if (--g->pending > 0) return;
        lk.unlock();
        g->done(std::move(g->results));
      });
    writes_.submit_many(jobs, std::move(each));
  };
  auto results = co_await await_callback<std::vector<submit_result>>(std::move(start));
  co_return results;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::find_job(const tenant_id& t,
                                                                              const job_id& id) {
  auto query = [t, id](pqxx::connection& c) { return find_job_json(c, t, id); };
  auto job = co_await db_call(reads_, query);
  co_return job;
}

boost::asio::awaitable<std::string> platform_backend::list_jobs(const tenant_id& t,
                                                                const job_filter& f) {
  auto query = [t, f](pqxx::connection& c) { return list_jobs_json(c, t, f); };
  auto jobs = co_await db_call(reads_, query);
  co_return jobs;
}

boost::asio::awaitable<cancel_reply> platform_backend::cancel_job(const tenant_id& t,
                                                                  const job_id& id) {
  auto op = [t, id](pqxx::connection& c) {
    return change_then_read<cancel_reply>(c, t, id, jobs::cancel_job);
  };
  auto reply = co_await db_call(reads_, op);
  co_return reply;
}

boost::asio::awaitable<retry_reply> platform_backend::retry_job(const tenant_id& t,
                                                                const job_id& id) {
  auto op = [t, id](pqxx::connection& c) {
    return change_then_read<retry_reply>(c, t, id, jobs::retry_job);
  };
  auto reply = co_await db_call(reads_, op);
  co_return reply;
}

boost::asio::awaitable<readiness> platform_backend::ready() {
  readiness r;
  // A broker blocking our connection (a memory or disk alarm) is not ready,
  // nor one that holds a message unconfirmed for 5 s or let one reach its
  // confirm timeout with nothing confirmed since (frozen): the state says
  // which. Submissions get 503 at once while it is blocked, or after a
  // message reached its confirm timeout until the broker confirms again.
  r.broker_state = pub_.state(std::chrono::seconds(5));
  // A database that does not answer within ping_deadline is not ready: the
  // probe answers 503 then instead of waiting as long as the server does.
  // While a ping has gone unanswered that long, no other is queued behind it
  // (probes every second would pile up on the pool's queue); the next one
  // starts once it answers.
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(pings_->mu);
    if (!pings_->started.empty() && now - *pings_->started.begin() >= ping_deadline) co_return r;
    pings_->started.insert(now);
  }
  // Taken off when the pool is done with the ping, whether it ran or found
  // no connection (the last copy of the callable goes with the pool's task).
  auto answered = std::shared_ptr<void>(nullptr, [p = pings_, now](void*) {
    std::lock_guard lk(p->mu);
    p->started.erase(p->started.find(now));
  });
  auto ping = [answered](pqxx::connection& c) {
    pqxx::nontransaction n(c);
    n.exec("SELECT 1");
    return true;
  };
  try {
    r.database = (co_await db_call_for(reads_, ping, ping_deadline)).value_or(false);
  } catch (const std::exception&) {
    r.database = false;
  }
  co_return r;
}

boost::asio::awaitable<std::string> platform_backend::create_key(const tenant_id& t,
                                                                 const key_request& k) {
  auto op = [t, k](pqxx::connection& c) {
    return create_api_key_json(c, t, k.name, k.role, k.expires_at);
  };
  auto json = co_await db_call(reads_, op);
  co_return json;
}

boost::asio::awaitable<std::string> platform_backend::list_keys(const tenant_id& t) {
  auto op = [t](pqxx::connection& c) { return list_api_keys_json(c, t); };
  auto json = co_await db_call(reads_, op);
  co_return json;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::revoke_key(
    const tenant_id& t, const std::string& id) {
  auto op = [t, id](pqxx::connection& c) { return revoke_api_key(c, t, id); };
  auto json = co_await db_call(reads_, op);
  // This process forgets at once; the others when the NOTIFY reaches them.
  if (json) forget_keys();
  co_return json;
}

void platform_backend::forget_keys() {
  std::lock_guard lk(mu_);
  ++key_epoch_;
  auth_cache_.clear();
  miss_cache_.clear();
}

}  // namespace jobs

namespace jobs {

boost::asio::awaitable<std::pair<bool, std::string>> api_backend::put_webhook_endpoint(
    const tenant_id&, const std::string&, const webhook_endpoint_spec&) {
  throw std::runtime_error("this backend has no webhook endpoints");
  co_return std::pair<bool, std::string>{};
}

boost::asio::awaitable<std::optional<std::string>> api_backend::find_webhook_endpoint(
    const tenant_id&, const std::string&) {
  throw std::runtime_error("this backend has no webhook endpoints");
  co_return std::nullopt;
}

boost::asio::awaitable<std::string> api_backend::list_webhook_endpoints(const tenant_id&) {
  throw std::runtime_error("this backend has no webhook endpoints");
  co_return std::string();
}

boost::asio::awaitable<std::optional<std::string>> api_backend::delete_webhook_endpoint(
    const tenant_id&, const std::string&) {
  throw std::runtime_error("this backend has no webhook endpoints");
  co_return std::nullopt;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::delete_webhook_endpoint(
    const tenant_id& t, const std::string& name) {
  auto op = [t, name](pqxx::connection& c) { return jobs::delete_webhook_endpoint(c, t, name); };
  auto deleted = co_await db_call(reads_, op);
  co_return deleted;
}

boost::asio::awaitable<std::pair<bool, std::string>> platform_backend::put_webhook_endpoint(
    const tenant_id& t, const std::string& name, const webhook_endpoint_spec& spec) {
  auto op = [t, name, spec](pqxx::connection& c) {
    pqxx::work w(c);
    auto r = jobs::put_webhook_endpoint(w, t, name, spec);
    w.commit();
    return r;
  };
  auto reply = co_await db_call(reads_, op);
  co_return reply;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::find_webhook_endpoint(
    const tenant_id& t, const std::string& name) {
  auto query = [t, name](pqxx::connection& c) { return find_webhook_endpoint_json(c, t, name); };
  auto ep = co_await db_call(reads_, query);
  co_return ep;
}

boost::asio::awaitable<std::string> platform_backend::list_webhook_endpoints(const tenant_id& t) {
  auto query = [t](pqxx::connection& c) { return list_webhook_endpoints_json(c, t); };
  auto list = co_await db_call(reads_, query);
  co_return list;
}

}  // namespace jobs
