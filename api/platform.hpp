#pragma once
// The API's backend on the real servers: reads and cancels through a
// db_pool, submissions through the submitter (group commit + confirmed
// publish), keys checked
// against PostgreSQL and cached for `auth_cache` (a revoked key stops
// working within that time on every API process).
//
// Thread-safety: all members may be called from any coroutine.

#include "api/backend.hpp"
#include "api/submitter.hpp"
#include "common/db.hpp"
#include "common/queue_stats.hpp"
#include "common/scaling.hpp"
#include "queues/amqp.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

namespace jobs {

class platform_backend final : public api_backend {
 public:
  /// A key lookup waits for PostgreSQL at most `auth_most` (the submission
  /// commit timeout: a submission's 503 comes no later for an uncached key).
  platform_backend(db_pool& reads, submitter& writes, publisher& pub,
                   std::chrono::milliseconds auth_cache,
                   std::chrono::milliseconds auth_most = std::chrono::milliseconds(10000));

  /// How long GET /metrics waits for its PostgreSQL reads before serving the
  /// queue gauges' last values: under a scraper's usual 10 s timeout.
  static constexpr std::chrono::milliseconds metrics_refresh_most{5000};

  boost::asio::awaitable<std::optional<principal>> authenticate(
      const std::string& api_key) override;
  boost::asio::awaitable<submit_result> submit(const new_job& job) override;
  boost::asio::awaitable<std::vector<submit_result>> submit_many(
      const std::vector<new_job>& jobs) override;
  boost::asio::awaitable<std::optional<std::string>> find_job(const tenant_id& t,
                                                              const job_id& id) override;
  boost::asio::awaitable<std::string> list_jobs(const tenant_id& t, const job_filter& f) override;
  boost::asio::awaitable<cancel_reply> cancel_job(const tenant_id& t, const job_id& id) override;
  boost::asio::awaitable<retry_reply> retry_job(const tenant_id& t, const job_id& id) override;
  boost::asio::awaitable<void> refresh_metrics(api_metrics& m) override;
  boost::asio::awaitable<readiness> ready() override;
  boost::asio::awaitable<std::string> create_key(const tenant_id& t, const key_request& k) override;
  boost::asio::awaitable<std::string> list_keys(const tenant_id& t) override;
  boost::asio::awaitable<std::optional<std::string>> revoke_key(const tenant_id& t,
                                                                const std::string& id) override;
  /// Drops every cached key lookup (a key was revoked somewhere).
  void forget_keys();
  std::uint64_t key_epoch() const override { return key_epoch_.load(); }
  boost::asio::awaitable<std::pair<bool, std::string>> put_webhook_endpoint(
      const tenant_id& t, const std::string& name, const webhook_endpoint_spec& spec) override;
  boost::asio::awaitable<std::optional<std::string>> find_webhook_endpoint(
      const tenant_id& t, const std::string& name) override;
  boost::asio::awaitable<std::string> list_webhook_endpoints(const tenant_id& t) override;
  boost::asio::awaitable<std::optional<std::string>> delete_webhook_endpoint(
      const tenant_id& t, const std::string& name) override;
  // api/admin_backend.cpp
  boost::asio::awaitable<std::optional<std::string>> job_events(const tenant_id& t,
                                                                const job_id& id) override;
  boost::asio::awaitable<long> count_bulk(const tenant_id& t, const job_filter& f,
                                          bulk_action a) override;
  boost::asio::awaitable<bulk_outcome> apply_bulk(const tenant_id& t, const job_filter& f,
                                                  bulk_action a) override;
  boost::asio::awaitable<bool> set_queue_paused(const std::string& queue, bool paused,
                                                const std::string& by) override;
  boost::asio::awaitable<std::string> queue_overview() override;
  boost::asio::awaitable<std::optional<std::string>> queue_history(
      const std::string& range) override;
  /// GET /v1/queues reads the broker at `broker` (passive declares on a
  /// connection of its own, opened on first use) and PostgreSQL; unsupervised
  /// queues show `defaults`. Until called, queue_stats() throws.
  void enable_queue_stats(const std::string& amqp_url, scaling_policy defaults);
  boost::asio::awaitable<std::string> queue_stats() override;

 private:
  /// The 503 for a job to publish now while the publisher cannot take it:
  /// no connection, the broker blocking it (a resource alarm), or a broker
  /// that stopped confirming (publisher::accepting()).
  problem broker_refusal() const;

  static constexpr std::size_t auth_cache_max = 10000;
  struct cached {
    std::optional<principal> who;
    std::chrono::steady_clock::time_point until;
  };
  db_pool& reads_;
  submitter& writes_;
  publisher& pub_;
  std::chrono::milliseconds auth_ttl_;
  std::chrono::milliseconds auth_most_;
  std::mutex mu_;
  std::atomic<std::uint64_t> key_epoch_{0};             // forget_keys() calls
  std::unordered_map<std::string, cached> auth_cache_;  // key hash -> principal
  std::unordered_map<std::string, cached> miss_cache_;  // key hash -> nullopt (unknown)
  struct stats_source;
  /// The broker's queue numbers, read on stats_'s thread (no pool connection
  /// held meanwhile); nullopt when the read failed or took over `most`.
  boost::asio::awaitable<std::optional<std::map<std::string, broker_queue>>> read_broker_queues(
      std::chrono::milliseconds most);
  /// How long GET /v1/queues waits for the broker's numbers.
  static constexpr std::chrono::milliseconds broker_read_most{5000};
  std::shared_ptr<stats_source> stats_;
  // ready(): when each ping of the database not yet answered was sent;
  // shared with the pool's tasks, which may outlive this object.
  static constexpr std::chrono::seconds ping_deadline{2};
  struct pings {
    std::mutex mu;
    std::multiset<std::chrono::steady_clock::time_point> started;
  };
  std::shared_ptr<pings> pings_ = std::make_shared<pings>();
};

}  // namespace jobs
