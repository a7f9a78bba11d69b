#include "workers/webhooks/endpoints.hpp"

#include "common/log.hpp"
#include "common/time.hpp"
#include "common/webhook_signature.hpp"

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>

namespace jobs::webhooks {

namespace {
// The breaker's times as milliseconds since the epoch (whole: they are
// written so, but for a pause from before 0021) and as milliseconds left,
// from PostgreSQL's clock; NULL once passed. Then PostgreSQL's now.
constexpr const char* find_sql =
    "SELECT secrets, retry_schedule_ms, consecutive_failures, "
    "  CASE WHEN paused_until > now() "
    "    THEN ceil(extract(epoch FROM paused_until) * 1000)::int8 END, "
    "  CASE WHEN paused_until > now() "
    "    THEN ceil(extract(epoch FROM paused_until - now()) * 1000)::int8 END, "
    "  CASE WHEN trial_until > now() THEN (extract(epoch FROM trial_until) * 1000)::int8 END, "
    "  CASE WHEN trial_until > now() "
    "    THEN ceil(extract(epoch FROM trial_until - now()) * 1000)::int8 END, "
    "  (extract(epoch FROM now()) * 1000)::int8 "
    "FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2";

constexpr const char* take_trial_sql =
    "UPDATE webhook_endpoints "
    "SET trial_until = "
    "    date_trunc('milliseconds', now() + make_interval(secs => $4::float8 / 1000)), "
    "  updated_at = now() "
    "WHERE tenant_id = $1 AND name = $2 AND consecutive_failures >= $3 "
    "  AND (paused_until IS NULL OR paused_until <= now()) "
    "  AND (trial_until IS NULL OR trial_until <= now()) "
    "RETURNING (extract(epoch FROM trial_until) * 1000)::int8, "
    "  ceil(extract(epoch FROM trial_until - now()) * 1000)::int8";

// The jobs waiting on the breaker: snoozed until exactly the trial's lease
// ($4) or the pause's end ($5), both whole milliseconds since the epoch (an
// equality the jobs_due index answers), of this endpoint, not yet due.
// Rows the scheduler holds are skipped: they are being published anyway.
constexpr const char* waiting_sql =
    "SELECT j.id FROM jobs j "
    "WHERE j.state = 'scheduled' AND j.run_at > now() AND j.run_at IN ("
    "    'epoch'::timestamptz + $4::int8 * interval '1 millisecond', "
    "    'epoch'::timestamptz + $5::int8 * interval '1 millisecond') "
    "  AND j.tenant_id = $1 AND j.queue = $3 AND j.type = 'deliver' "
    "  AND coalesce(j.payload->>'endpoint', 'default') = $2 "
    "ORDER BY j.priority DESC, j.id {} FOR UPDATE OF j SKIP LOCKED";

// The endpoint's row locked for the transaction: its trial's lease, its
// pause's end (NULL: none) and its count of failures.
// The commit hook's takes a row that has breaker state only, and skips it
// when locked: a round holding one endpoint's row while waiting for
// another's could deadlock with another round.
constexpr const char* lock_sql =
    "SELECT (extract(epoch FROM trial_until) * 1000)::int8, "
    "  ceil(extract(epoch FROM paused_until) * 1000)::int8, consecutive_failures "
    "FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2 {}";
constexpr const char* has_state =
    "AND (consecutive_failures <> 0 OR paused_until IS NOT NULL OR trial_until IS NOT NULL) ";
const std::string lock_any_sql = fmt::format(lock_sql, "FOR UPDATE");
const std::string lock_dirty_sql =
    fmt::format(lock_sql, std::string(has_state) + "FOR UPDATE SKIP LOCKED");
const std::string read_dirty_sql = fmt::format(lock_sql, has_state);

// After a lock. $3: the queue, $4 and $5: the lease and the pause read.
const std::string reset_sql = fmt::format(
    "WITH reset AS ("
    "  UPDATE webhook_endpoints SET consecutive_failures = 0, paused_until = NULL, "
    "    trial_until = NULL, updated_at = now() "
    "  WHERE tenant_id = $1 AND name = $2 "
    "    AND (consecutive_failures <> 0 OR paused_until IS NOT NULL OR trial_until IS NOT NULL)) "
    "UPDATE jobs SET run_at = now(), updated_at = now() WHERE id IN ({})",
    fmt::format(waiting_sql, ""));

// After a lock. $3: the queue, $4 and $5: the lease and the pause read, $6:
// the threshold, $7: the cooldown in ms. A failure at the threshold pauses
// the endpoint (until a whole millisecond) and ends its trial: the jobs that
// waited for the trial or the pause before now wait for the new pause's end.
const std::string failure_sql = fmt::format(
    "WITH failed AS ("
    "  UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, "
    "    paused_until = CASE WHEN consecutive_failures + 1 >= $6 "
    "      THEN date_trunc('milliseconds', now() + make_interval(secs => $7::float8 / 1000)) "
    "      ELSE paused_until END, "
    "    trial_until = CASE WHEN consecutive_failures + 1 >= $6 THEN NULL ELSE trial_until END, "
    "    updated_at = now() "
    "  WHERE tenant_id = $1 AND name = $2 "
    "  RETURNING paused_until, consecutive_failures >= $6 AS paused) "
    "UPDATE jobs SET run_at = (SELECT paused_until FROM failed), updated_at = now() "
    "WHERE (SELECT paused FROM failed) AND id IN ({})",
    fmt::format(waiting_sql, ""));

// The jobs whose wait was committed after the breaker's change: due at
// once, or at the end of the pause in force. $3: the queue, $4 and $5: the
// lease and the pause they wait for.
const std::string late_sql = fmt::format(
    "UPDATE jobs SET run_at = greatest(now(), (SELECT paused_until FROM webhook_endpoints "
    "  WHERE tenant_id = $1 AND name = $2)), updated_at = now() "
    "WHERE id IN ({})",
    fmt::format(waiting_sql, ""));

// $3: the queue, $4: the lease given back ($5 NULL).
const std::string release_sql = fmt::format(
    "WITH released AS ("
    "  UPDATE webhook_endpoints SET trial_until = NULL, updated_at = now() "
    "  WHERE tenant_id = $1 AND name = $2 "
    "    AND trial_until = 'epoch'::timestamptz + $4::int8 * interval '1 millisecond' "
    "  RETURNING 1) "
    "UPDATE jobs SET run_at = now(), updated_at = now() "
    "WHERE EXISTS (SELECT FROM released) AND id IN ({})",
    fmt::format(waiting_sql, "LIMIT 1"));

std::optional<breaker_state> lock_endpoint(pqxx::transaction_base& tx, const std::string& sql,
                                           const std::string& tenant, const std::string& name) {
  auto r = tx.exec_params(sql, tenant, name);
  if (r.empty()) return std::nullopt;
  breaker_state w;
  if (!r[0][0].is_null()) w.lease_ms = r[0][0].as<long long>();
  if (!r[0][1].is_null()) w.pause_ms = r[0][1].as<long long>();
  w.failures = r[0][2].as<int>();
  return w;
}

// The writer's statements wait for a row lock 5 s at the most: one thread
// serves every endpoint, and a worker frozen holding one row must not stop
// the rest (a task given up so is logged; its jobs wait for their time).
void bound_lock_waits(pqxx::transaction_base& tx) { tx.exec("SET LOCAL lock_timeout = '5s'"); }

std::chrono::system_clock::time_point epoch_ms(long long ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

std::optional<breaker_time> read_time(const pqxx::field& at_ms, const pqxx::field& left_ms,
                                      std::chrono::steady_clock::time_point now) {
  if (at_ms.is_null() || left_ms.is_null()) return std::nullopt;
  return breaker_time{epoch_ms(at_ms.as<long long>()),
                      now + std::chrono::milliseconds(left_ms.as<long long>())};
}

// A PostgreSQL array of integers or texts as text: {a,b}.
std::vector<std::string> array_items(const pqxx::field& f) {
  std::vector<std::string> out;
  if (f.is_null()) return out;
  auto p = f.as_array();
  for (auto [kind, value] = p.get_next(); kind != pqxx::array_parser::juncture::done;
       std::tie(kind, value) = p.get_next())
    if (kind == pqxx::array_parser::juncture::string_value) out.push_back(value);
  return out;
}
}  // namespace

endpoint_store::endpoint_store(std::string pg_url, int threshold,
                               std::chrono::milliseconds cooldown,
                               std::chrono::milliseconds cache_ttl)
    : url_(std::move(pg_url)),
      threshold_(threshold),
      cooldown_(cooldown),
      ttl_(cache_ttl),
      timer_thread_([this] { timer_ioc_.run(); }),
      writer_(url_, 1) {}

endpoint_store::~endpoint_store() {
  // The passes not yet due are dropped (their jobs wait for their time);
  // then the writer, destroyed first of the members, finishes what it was
  // given.
  timer_work_.reset();
  timer_ioc_.stop();
  timer_thread_.join();
}

breaker_gate gate(const endpoint& ep, int threshold, std::chrono::steady_clock::time_point now) {
  if (ep.paused_until && !ep.paused_until->passed(now)) return breaker_gate::wait_pause;
  if (ep.consecutive_failures < threshold) return breaker_gate::send;
  if (ep.trial_until && !ep.trial_until->passed(now)) return breaker_gate::wait_trial;
  return breaker_gate::trial;
}

std::optional<endpoint> endpoint_store::find(const std::string& tenant, const std::string& name) {
  std::lock_guard lk(mu_);
  auto key = std::pair{tenant, name};
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (std::chrono::steady_clock::now() < it->second.until) return it->second.ep;
    cache_.erase(it);
  }
  auto row = with_reconnect(conn_, url_, [&](pqxx::connection& c) {
    pqxx::nontransaction n(c);
    return n.exec_params(find_sql, tenant, name);
  });
  auto now = std::chrono::steady_clock::now();
  std::optional<endpoint> ep;
  if (!row.empty()) {
    ep.emplace();
    for (const auto& s : array_items(row[0][0]))
      if (auto k = decode_secret(s)) ep->keys.push_back(*k);
    auto gaps = array_items(row[0][1]);
    if (!gaps.empty()) {
      ep->schedule.emplace();
      for (const auto& g : gaps) ep->schedule->gaps.emplace_back(std::stoll(g));
    }
    ep->consecutive_failures = row[0][2].as<int>();
    ep->paused_until = read_time(row[0][3], row[0][4], now);
    ep->trial_until = read_time(row[0][5], row[0][6], now);
    ep->db_now = epoch_ms(row[0][7].as<long long>());
  }
  // A miss must come from PostgreSQL just now, or an endpoint created a
  // moment ago would fail the jobs meant for it; a pause or a trial, or a
  // job made due by its end would find it again in the cache.
  if (ep && !ep->paused_until && !ep->trial_until) cache_[key] = {*ep, now + ttl_};
  return ep;
}

std::optional<breaker_time> endpoint_store::take_trial(const std::string& tenant,
                                                       const std::string& name,
                                                       std::chrono::milliseconds lease) {
  std::lock_guard lk(mu_);
  cache_.erase({tenant, name});
  auto row = with_reconnect(conn_, url_, [&](pqxx::connection& c) {
    pqxx::nontransaction n(c);
    return n.exec_params(take_trial_sql, tenant, name, threshold_,
                         static_cast<double>(lease.count()));
  });
  if (row.empty()) return std::nullopt;
  return read_time(row[0][0], row[0][1], std::chrono::steady_clock::now());
}

void endpoint_store::record_failure(const std::string& tenant, const std::string& name,
                                    const std::string& queue) {
  {
    std::lock_guard lk(mu_);
    cache_.erase({tenant, name});
  }
  writer_.post([this, tenant, name, queue](pqxx::connection* c) {
    if (!c) return;
    try {
      pqxx::work tx(*c);
      bound_lock_waits(tx);
      if (auto w = lock_endpoint(tx, lock_any_sql, tenant, name)) {
        tx.exec_params(failure_sql, tenant, name, queue, w->lease_ms, w->pause_ms, threshold_,
                       static_cast<double>(cooldown_.count()));
        tx.commit();
        settle_later(tenant, name, queue, w->lease_ms, w->pause_ms);
      }
    } catch (const std::exception& e) {
      log_warn("cannot record a webhook endpoint failure", {{"error", e.what()}});
    }
    std::lock_guard lk(mu_);
    cache_.erase({tenant, name});
  });
}

void endpoint_store::release_trial(const std::string& tenant, const std::string& name,
                                   const std::string& queue, breaker_time lease) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(lease.at.time_since_epoch());
  writer_.post([tenant, name, queue, ms](pqxx::connection* c) {
    if (!c) return;  // the lease ends on its own
    try {
      pqxx::work tx(*c);
      bound_lock_waits(tx);
      tx.exec_params(release_sql, tenant, name, queue, static_cast<long long>(ms.count()),
                     std::optional<long long>());
      tx.commit();
    } catch (const std::exception& e) {
      log_warn("cannot end a webhook endpoint's trial: it ends with its lease",
               {{"error", e.what()}});
    }
  });
}

void endpoint_store::reset_later(const std::string& tenant, const std::string& name,
                                 const std::string& queue,
                                 std::optional<breaker_state> unchanged_since) {
  writer_.post([this, tenant, name, queue, unchanged_since](pqxx::connection* c) {
    if (!c) return;
    try {
      pqxx::work tx(*c);
      bound_lock_waits(tx);
      auto w = lock_endpoint(tx, lock_any_sql, tenant, name);
      // Changed since (a failure elsewhere paused it again): that is newer.
      if (!w || (unchanged_since && *w != *unchanged_since)) return;
      tx.exec_params(reset_sql, tenant, name, queue, w->lease_ms, w->pause_ms);
      tx.commit();
      settle_later(tenant, name, queue, w->lease_ms, w->pause_ms);
    } catch (const std::exception& e) {
      log_warn("cannot close a webhook endpoint's circuit breaker", {{"error", e.what()}});
    }
  });
}

void endpoint_store::reset(pqxx::transaction_base& tx, const std::string& tenant,
                           const std::string& name, const std::string& queue) {
  {
    std::lock_guard lk(mu_);
    cache_.erase({tenant, name});  // its failures: no more hooks once it is reset
  }
  auto w = lock_endpoint(tx, lock_dirty_sql, tenant, name);
  if (!w) {
    // Nothing to reset, or the row held by another transaction (a round of
    // another worker, the writer): then by the writer, which waits for it
    // holding nothing else, if the breaker has not changed meanwhile.
    if (auto seen = lock_endpoint(tx, read_dirty_sql, tenant, name))
      reset_later(tenant, name, queue, *seen);
    return;
  }
  tx.exec_params(reset_sql, tenant, name, queue, w->lease_ms, w->pause_ms);
  // Should this transaction not commit, the passes only wake jobs that then
  // find the breaker as it was and wait again.
  settle_later(tenant, name, queue, w->lease_ms, w->pause_ms);
}

void endpoint_store::settle_later(const std::string& tenant, const std::string& name,
                                  const std::string& queue, std::optional<long long> lease,
                                  std::optional<long long> pause) {
  if (!lease && !pause) return;
  for (auto delay : {std::chrono::seconds(1), std::chrono::seconds(5)}) {
    auto t = std::make_shared<boost::asio::steady_timer>(timer_ioc_, delay);
    t->async_wait([this, t, tenant, name, queue, lease, pause](boost::system::error_code ec) {
      if (ec) return;
      writer_.post([tenant, name, queue, lease, pause](pqxx::connection* c) {
        if (!c) return;  // they wait for their time
        try {
          pqxx::work tx(*c);
          bound_lock_waits(tx);
          tx.exec_params(late_sql, tenant, name, queue, lease, pause);
          tx.commit();
        } catch (const std::exception& e) {
          log_warn("cannot settle the jobs that waited on a webhook endpoint's breaker",
                   {{"error", e.what()}});
        }
      });
    });
  }
}

}  // namespace jobs::webhooks
