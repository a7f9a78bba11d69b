#include "api/platform.hpp"

#include "api/async.hpp"
#include "api/submission.hpp"

namespace jobs {

platform_backend::platform_backend(db_pool& reads, submitter& writes, publisher& pub,
                                   std::chrono::milliseconds auth_cache)
    : reads_(reads), writes_(writes), pub_(pub), auth_ttl_(auth_cache) {}

boost::asio::awaitable<std::optional<principal>> platform_backend::authenticate(
    const std::string& api_key) {
  // The cache is keyed by the hash, so the key itself is never kept.
  auto hash = hash_api_key(api_key);
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(mu_);
    auto it = auth_cache_.find(hash);
    if (it != auth_cache_.end() && it->second.until > now) co_return it->second.who;
  }
  auto query = [key = api_key](pqxx::connection& c) { return authenticate_key(c, key); };
  auto who = co_await db_call(reads_, query);
  std::lock_guard lk(mu_);
  if (auth_cache_.size() >= auth_cache_max) auth_cache_.clear();
  auth_cache_[hash] = {who, now + auth_ttl_};
  co_return who;
}

boost::asio::awaitable<submit_result> platform_backend::submit(const new_job& job) {
  // Don't record what cannot be published now.
  if (job.state == job_state::queued && !pub_.connected())
    co_return make_problem(503, "unavailable", "the message broker is unavailable; retry later");
  auto start = [this, &job](std::function<void(submit_result)> done) {
    writes_.submit(job, std::move(done));
  };
  auto result = co_await await_callback<submit_result>(std::move(start));
  co_return result;
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
    cancel_reply r;
    {
      pqxx::work w(c);
      r.outcome = jobs::cancel_job(w, t, id);
      w.commit();
    }
    if (r.outcome.result != cancel_result::not_found) r.job = find_job_json(c, t, id).value_or("");
    return r;
  };
  auto reply = co_await db_call(reads_, op);
  co_return reply;
}

boost::asio::awaitable<std::pair<retry_result, std::string>> platform_backend::retry_job(
    const tenant_id& t, const job_id& id) {
  auto op = [t, id](pqxx::connection& c) {
    std::pair<retry_result, std::string> r;
    {
      pqxx::work w(c);
      r.first = jobs::retry_job(w, t, id);
      w.commit();
    }
    if (r.first != retry_result::not_found) r.second = find_job_json(c, t, id).value_or("");
    return r;
  };
  auto reply = co_await db_call(reads_, op);
  co_return reply;
}

boost::asio::awaitable<readiness> platform_backend::ready() {
  readiness r;
  r.broker = pub_.connected();
  try {
    auto ping = [](pqxx::connection& c) {
      pqxx::nontransaction n(c);
      n.exec("SELECT 1");
      return true;
    };
    r.database = co_await db_call(reads_, ping);
  } catch (const std::exception&) {
    r.database = false;
  }
  co_return r;
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
