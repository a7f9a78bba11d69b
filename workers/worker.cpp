#include "workers/worker.hpp"

#include "common/db.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "queues/consumer.hpp"
#include "queues/message.hpp"
#include "workers/detail/handler_pool.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <boost/json/serialize.hpp>

#include <deque>
#include <random>
#include <unordered_map>

namespace jobs {

namespace {
constexpr int idle_poll_ms = 200;  // also bounds how late heartbeats and stop() are noticed
constexpr std::chrono::milliseconds max_backoff{5000};

std::string default_worker_id() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  unsigned char r[3];
  RAND_bytes(r, sizeof r);
  return fmt::format("{}:{}:{:02x}{:02x}{:02x}", host, getpid(), r[0], r[1], r[2]);
}
}  // namespace

struct worker::impl {
  worker& w;
  detail::handler_pool pool;
  int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::atomic<bool> stopping{false};
  std::unique_ptr<pqxx::connection> db;
  std::unique_ptr<consumer> amqp;
  std::deque<std::pair<delivery, job_message>> waiting;  // received, not yet claimed
  std::unordered_map<std::string, uint64_t> running;     // job id -> delivery tag (0: channel lost)
  std::vector<detail::finished_job> finished;            // outcome not yet committed
  std::chrono::steady_clock::time_point next_lease_renewal{};
  std::mt19937_64 rng{std::random_device{}()};

  impl(worker& wk) : w(wk), pool(wk.opts_.concurrency, wk.handlers_) {}
  ~impl() { ::close(stop_fd); }

  const worker_options& o() const { return w.opts_; }

  void connect_amqp() {
    amqp = std::make_unique<consumer>(parse_amqp_url(o().amqp_url), o().heartbeat_s, o().queue,
                                      o().prefetch, topology_options{o().delivery_limit});
    log_info("worker consuming", {{"queue", o().queue},
                                  {"worker_id", o().worker_id},
                                  {"concurrency", o().concurrency},
                                  {"prefetch", o().prefetch}});
  }

  void lose_amqp(const std::exception& e) {
    log_warn("broker connection lost", {{"error", e.what()}});
    amqp.reset();
    // The broker requeues everything unacked; running jobs still commit, and
    // their redelivered messages will find them finished.
    waiting.clear();
    for (auto& [id, tag] : running) tag = 0;
  }

  void receive(int wait_ms) {
    std::vector<delivery> got;
    amqp->poll(got, wait_ms, pool.wake_fd());
    for (auto& d : got) {
      std::string why;
      auto m = decode_job_message(d.body, &why);
      if (!m || m->queue != o().queue) {
        log_error("unusable message dead-lettered", {{"reason", m ? "wrong queue" : why}});
        amqp->reject(d.tag, false);
        ++w.stats_.rejected;
        continue;
      }
      waiting.emplace_back(std::move(d), std::move(*m));
    }
  }

  void claim() {
    int free = o().concurrency - static_cast<int>(running.size());
    if (free <= 0 || waiting.empty() || stopping) return;
    std::vector<std::string> ids;
    std::unordered_map<std::string, uint64_t> tags;
    std::vector<std::pair<delivery, job_message>> taken;
    for (int i = 0; i < free && !waiting.empty(); ++i) {
      auto [d, m] = std::move(waiting.front());
      waiting.pop_front();
      auto run = running.find(m.id);
      if (run != running.end() && run->second == 0) {
        // Redelivered after we lost the channel: this delivery is acked when the job ends.
        run->second = d.tag;
      } else if (run != running.end() || tags.contains(m.id)) {
        amqp->ack(d.tag);  // a duplicate of a job this worker has in hand
      } else {
        ids.push_back(m.id);
        tags.emplace(m.id, d.tag);
        taken.emplace_back(std::move(d), std::move(m));
      }
    }
    std::vector<claimed_job> claimed;
    try {
      claimed = with_reconnect(db, o().pg_url, [&](pqxx::connection& c) {
        pqxx::work tx(c);
        auto r = claim_jobs(tx, ids, o().worker_id, o().lease);
        tx.commit();
        return r;
      });
    } catch (...) {
      for (auto it = taken.rbegin(); it != taken.rend(); ++it) waiting.push_front(std::move(*it));
      throw;
    }
    for (auto& j : claimed) {
      running.emplace(j.id, tags.at(j.id));
      tags.erase(j.id);
      ++w.stats_.claimed;
      pool.submit(std::move(j));
    }
    // Not claimable: finished, cancelled or running elsewhere. Drop the message.
    for (auto& [id, tag] : tags) {
      amqp->ack(tag);
      ++w.stats_.dropped;
    }
  }

  job_outcome outcome_of(const detail::finished_job& f) {
    job_outcome out{f.job.id, f.job.attempt};
    if (auto* v = std::get_if<boost::json::value>(&f.outcome)) {
      out.state = job_state::succeeded;
      out.result_json = boost::json::serialize(*v);
      return out;
    }
    const auto& e = std::get<handler_error>(f.outcome);
    out.error = e.message.empty() ? "failed" : e.message;
    if (e.what == handler_error::kind::snooze) {
      out.state = job_state::scheduled;
      out.error.clear();
      out.run_at = format_rfc3339(e.snooze_until);
    } else if (e.what == handler_error::kind::permanent || f.job.attempt >= f.job.max_attempts) {
      out.state = job_state::dead;
    } else {
      out.state = job_state::failed;
      double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      out.run_at =
          format_rfc3339(std::chrono::system_clock::now() + o().retry.delay(f.job.attempt, u));
    }
    return out;
  }

  void complete() {
    pool.take_finished(finished);
    if (finished.empty()) return;
    std::vector<job_outcome> outcomes;
    outcomes.reserve(finished.size());
    for (const auto& f : finished) outcomes.push_back(outcome_of(f));
    with_reconnect(db, o().pg_url, [&](pqxx::connection& c) {
      pqxx::work tx(c);
      complete_jobs(tx, outcomes, o().worker_id);
      tx.commit();
      return 0;
    });
    // Committed: now the messages may go.
    for (const auto& out : outcomes) {
      auto it = running.find(out.id);
      if (it == running.end()) continue;
      if (it->second != 0 && amqp) amqp->ack(it->second);
      running.erase(it);
      switch (out.state) {
        case job_state::succeeded: ++w.stats_.succeeded; break;
        case job_state::failed:
          ++w.stats_.failed;
          log_info("attempt failed; retry scheduled", {{"job_id", out.id},
                                                       {"attempt", out.attempt},
                                                       {"error", out.error},
                                                       {"retry_at", out.run_at}});
          break;
        case job_state::dead:
          ++w.stats_.dead;
          log_warn("job dead",
                   {{"job_id", out.id}, {"attempt", out.attempt}, {"error", out.error}});
          break;
        default: ++w.stats_.snoozed; break;
      }
    }
    finished.clear();
  }

  void renew_leases() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_lease_renewal || running.empty()) return;
    next_lease_renewal = now + o().lease / 3;
    std::vector<std::string> ids;
    for (auto& [id, tag] : running) ids.push_back(id);
    with_reconnect(db, o().pg_url, [&](pqxx::connection& c) {
      pqxx::work tx(c);
      extend_leases(tx, ids, o().worker_id, o().lease);
      tx.commit();
      return 0;
    });
  }

  void run() {
    auto backoff = std::chrono::milliseconds(100);
    std::chrono::steady_clock::time_point drain_deadline{};
    bool cancelled = false;
    for (;;) {
      if (stopping && !cancelled) {
        cancelled = true;
        drain_deadline = std::chrono::steady_clock::now() + o().shutdown;
        log_info("worker draining", {{"running", static_cast<std::int64_t>(running.size())}});
        try {
          if (amqp) amqp->cancel();
        } catch (const std::exception& e) {
          lose_amqp(e);
        }
      }
      if (stopping && running.empty() && finished.empty()) break;
      if (stopping && std::chrono::steady_clock::now() > drain_deadline) {
        log_warn("drain deadline passed; unfinished jobs return to the queue",
                 {{"running", static_cast<std::int64_t>(running.size())}});
        break;
      }
      try {
        if (!amqp && !stopping) connect_amqp();
        if (amqp && !stopping)
          receive(idle_poll_ms);
        else {
          struct pollfd p[2] = {{pool.wake_fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
          ::poll(p, 2, idle_poll_ms);
        }
        claim();
        complete();
        renew_leases();
        backoff = std::chrono::milliseconds(100);
      } catch (const amqp_error& e) {
        lose_amqp(e);
        pause(backoff);
      } catch (const pqxx::failure& e) {
        log_warn("database error; retrying", {{"error", e.what()}});
        db.reset();
        pause(backoff);
      }
    }
    amqp.reset();  // unacked deliveries go back to the queue
  }

  void pause(std::chrono::milliseconds& backoff) {
    struct pollfd p {
      stop_fd, POLLIN, 0
    };
    ::poll(&p, 1, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, max_backoff);
  }
};

worker::worker(worker_options o, const handler_registry& handlers)
    : opts_(std::move(o)), handlers_(handlers) {
  if (opts_.worker_id.empty()) opts_.worker_id = default_worker_id();
  if (!is_known_queue(opts_.queue)) throw std::invalid_argument("unknown queue " + opts_.queue);
  if (opts_.prefetch < opts_.concurrency) opts_.prefetch = opts_.concurrency;
  impl_ = std::make_unique<impl>(*this);
}

worker::~worker() = default;

void worker::run() { impl_->run(); }

void worker::stop() noexcept {
  impl_->stopping = true;
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->stop_fd, &one, sizeof one);
}

}  // namespace jobs
