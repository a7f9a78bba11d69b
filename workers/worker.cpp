#include "workers/worker.hpp"

#include "common/db.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "queues/brokers.hpp"
#include "queues/consumer.hpp"
#include "queues/message.hpp"
#include "workers/detail/handler_pool.hpp"
#include "workers/detail/in_flight.hpp"
#include "workers/detail/outcome.hpp"
#include "workers/detail/pause_control.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>

namespace jobs {

namespace {
constexpr int idle_poll_ms = 200;  // also bounds how late heartbeats and stop() are noticed
constexpr std::chrono::milliseconds max_backoff{5000};

std::string timed_out(std::chrono::milliseconds after) {
  return fmt::format("timed out after {} ms", after.count());
}

// Receives NOTIFY jobs_cancel, '<id>' on the coordinator's connection.
class cancel_listener final : public pqxx::notification_receiver {
 public:
  cancel_listener(pqxx::connection_base& c, std::vector<std::string>& out)
      : pqxx::notification_receiver(c, cancel_channel), out_(out) {}
  void operator()(const std::string& payload, int) override { out_.push_back(payload); }

 private:
  std::vector<std::string>& out_;
};

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
  std::unique_ptr<cancel_listener> listener;  // on *db; reset before it
  std::vector<std::string> cancel_requests;   // job ids from NOTIFY jobs_cancel
  broker_list brokers{w.opts_.amqp_url};
  std::unique_ptr<consumer> amqp;
  detail::pause_control pauses;  // an admin's pause of the queue (attached to *db)
  std::deque<std::pair<delivery, job_message>> waiting;  // received, not yet claimed
  bool paused = false;                                   // the queue, as last read
  detail::in_flight running;                             // claimed, outcome not yet committed
  std::vector<detail::finished_job> finished;            // outcome not yet committed
  std::chrono::steady_clock::time_point next_lease_renewal{};
  plan_refresher plans;
  std::optional<std::string> broker_failure;  // an ack after a commit failed (after_commit)
  bool fault_done = false;                    // tests: JOBS_TEST_FAULT fired once
  std::mt19937_64 rng{std::random_device{}()};

  impl(worker& wk)
      : w(wk),
        pool(wk.opts_.concurrency, wk.handlers_),
        pauses(wk.opts_.queue),
        running(wk.opts_.cancel_grace) {}
  ~impl() { ::close(stop_fd); }

  const worker_options& o() const { return w.opts_; }

  // The coordinator's connection, LISTENing on jobs_cancel: a fresh one
  // listens again, and renews leases at once, which reports the cancels
  // whose NOTIFY was sent while we were away.
  pqxx::connection& pg() {
    if (!db || !db->is_open()) {
      drop_db();
      db = pg_connect_hot(o().pg_url);
      listener = std::make_unique<cancel_listener>(*db, cancel_requests);
      pauses.attach(*db);
      next_lease_renewal = {};
    }
    return *db;
  }

  void drop_db() {
    pauses.detach();
    listener.reset();  // unregisters from the connection, so first
    db.reset();
  }

  // Runs fn(pg()), once more on a fresh connection if the first was broken.
  template <class Fn>
  auto with_db(Fn&& fn) {
    try {
      return fn(pg());
    } catch (const pqxx::broken_connection&) {
      drop_db();
      return fn(pg());
    }
  }

  void connect_amqp() {
    amqp = std::make_unique<consumer>(brokers.connect(o().heartbeat_s), o().queue, o().prefetch,
                                      topology_options{o().delivery_limit});
    log_info("worker consuming",
             {{"queue", o().queue},
              {"broker", fmt::format("{}:{}", brokers.current().host, brokers.current().port)},
              {"worker_id", o().worker_id},
              {"concurrency", o().concurrency},
              {"async_inflight", o().async_inflight},
              {"prefetch", o().prefetch}});
  }

  void lose_amqp(const std::exception& e) {
    log_warn("broker connection lost", {{"error", e.what()}});
    amqp.reset();
    // The broker requeues everything unacked; running jobs still commit, and
    // their redelivered messages will find them finished.
    waiting.clear();
    for (auto& [id, j] : running.jobs()) j.tag = 0;
  }

  void receive(int wait_ms) {
    std::vector<delivery> got;
    amqp->poll(got, wait_ms, pool.wake_fd());
    for (auto& d : got) {
      std::string why;
      auto m = decode_job_message(d.body, &why);
      if (!m || m->queue != o().queue) {
        log_error("unusable message dead-lettered", {{"reason", m ? "wrong queue" : why}});
        amqp->dead_letter(d, m ? "message for queue " + m->queue + " reached " + o().queue : why);
        ++w.stats_.rejected;
        continue;
      }
      waiting.emplace_back(std::move(d), std::move(*m));
    }
  }

  // A paused queue: stop consuming and claim nothing more
  // (workers/detail/pause_control.hpp); resumed: consume again. What was
  // received but not claimed stays in hand, unacked, until the resume:
  // handing it back would count a delivery each time (a quorum queue's
  // delivery limit), and a queue paused and resumed often enough would
  // dead-letter queued jobs' messages.
  void apply_pause() {
    if (!amqp || stopping) return;
    paused = with_db([&](pqxx::connection& c) { return pauses.paused(c); });
    if (paused && amqp->consuming()) {
      amqp->cancel();
      log_info("queue paused; consumer cancelled", {{"queue", o().queue}});
    } else if (!paused && !amqp->consuming()) {
      amqp->consume();
      log_info("queue resumed; consuming", {{"queue", o().queue}});
    }
  }

  // The messages to claim this cycle: sync jobs take free handler threads,
  // async jobs free in-flight slots (counting those whose outcome this cycle
  // commits first). Messages for a kind without room wait for the next round.
  struct claims {
    std::vector<std::string> ids;
    std::unordered_map<std::string, uint64_t> tags;
    std::vector<std::pair<delivery, job_message>> taken;
  };

  claims pick_claims(const std::vector<detail::finished_job>& ending) {
    claims c;
    int free_sync = o().concurrency - static_cast<int>(running.busy(false));
    int free_async = o().async_inflight - static_cast<int>(running.busy(true));
    for (const auto& f : ending)
      if (const auto* j = running.find(f.job.id)) ++(j->async ? free_async : free_sync);
    if ((free_sync <= 0 && free_async <= 0) || waiting.empty() || stopping || paused) return c;
    std::deque<std::pair<delivery, job_message>> later;
    while (!waiting.empty() && (free_sync > 0 || free_async > 0)) {
      auto [d, m] = std::move(waiting.front());
      waiting.pop_front();
      auto* run = running.find(m.id);
      if (run && run->tag == 0) {
        // Redelivered after we lost the channel: this delivery is acked when the job ends.
        run->tag = d.tag;
        continue;
      }
      if (run || c.tags.contains(m.id)) {
        amqp->ack(d.tag);  // a duplicate of a job this worker has in hand
        continue;
      }
      int& free = w.handlers_.find_async(m.queue, m.type) ? free_async : free_sync;
      if (free <= 0) {
        later.emplace_back(std::move(d), std::move(m));
        continue;
      }
      --free;
      c.ids.push_back(m.id);
      c.tags.emplace(m.id, d.tag);
      c.taken.emplace_back(std::move(d), std::move(m));
    }
    for (auto it = later.rbegin(); it != later.rend(); ++it) waiting.push_front(std::move(*it));
    return c;
  }

  // Acks after a commit. The commit stands whatever the broker does, so a
  // channel lost here must not cut the cycle's bookkeeping short (jobs just
  // claimed would not start, and would wait for their lease to expire): the
  // failure is noted, and handled by broker_check() once the bookkeeping is
  // done. The broker redelivers what was not acked; those deliveries find
  // their jobs finished, or running here.
  template <class Fn>
  void after_commit(Fn&& ack) {
    if (!amqp || broker_failure) return;
    try {
      ack(*amqp);
    } catch (const amqp_error& e) {
      broker_failure = e.what();
    }
  }

  void broker_check() {
    if (!broker_failure) return;
    amqp_error e(*broker_failure);
    broker_failure.reset();
    lose_amqp(e);
  }

  // Claimed and committed: the jobs go to the handlers; the messages of the
  // deferred and the unclaimable go.
  void start_claimed(capped_claim& got, std::unordered_map<std::string, uint64_t>& tags) {
    // Over their tenant's cap: scheduled again, so the message may go.
    for (const auto& id : got.deferred) {
      after_commit([&](consumer& c) { c.ack(tags.at(id)); });
      tags.erase(id);
      ++w.stats_.deferred;
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& j : got.claimed) {
      bool async = w.handlers_.find_async(j.queue, j.type) != nullptr;
      auto stop = running.start(j, tags.at(j.id), o().job_timeout, now, async);
      tags.erase(j.id);
      ++w.stats_.claimed;
      pool.submit(std::move(j), std::move(stop));
    }
    // Not claimable: finished, cancelled or running elsewhere. Drop the message.
    for (auto& [id, tag] : tags) {
      after_commit([&](consumer& c) { c.ack(tag); });
      ++w.stats_.dropped;
    }
  }

  // One transaction a cycle: the outcomes of the handlers that returned
  // (with their commit hooks), then the claims of the messages received.
  // After the commit the finished jobs' messages are acked and the claimed
  // jobs start. If it fails, both stay for the next cycle.
  void cycle() {
    pool.take_finished(finished);
    std::erase_if(finished, [&](const detail::finished_job& f) {
      return running.discard(f.job.id, f.job.attempt);  // already recorded without it
    });
    auto c = pick_claims(finished);
    if (finished.empty() && c.ids.empty()) return;
    std::vector<job_outcome> outcomes;
    outcomes.reserve(finished.size());
    for (const auto& f : finished) outcomes.push_back(outcome_for(f));
    capped_claim got;
    try {
      got = with_db([&](pqxx::connection& conn) {
        pqxx::work tx(conn);
        if (!outcomes.empty()) {
          run_commit_hooks(tx, outcomes);
          complete_jobs(tx, outcomes, o().worker_id);
        }
        auto r = claim_jobs_capped(tx, c.ids, o().worker_id, o().lease, o().caps);
        tx.commit();
        return r;
      });
    } catch (...) {
      for (auto it = c.taken.rbegin(); it != c.taken.rend(); ++it)
        waiting.push_front(std::move(*it));
      throw;
    }
    if (o().test_fault == "worker_crash_after_commit" && !outcomes.empty()) {
      log_warn("test fault: crashing after the commit, before the acks");
      std::_Exit(70);
    }
    if (o().test_fault == "worker_broker_lost_after_commit" && !fault_done && amqp &&
        !outcomes.empty() && !got.claimed.empty()) {
      log_warn("test fault: broker connection cut after the commit, before the acks");
      fault_done = true;
      amqp->sever();
    }
    completed(outcomes);
    start_claimed(got, c.tags);
    broker_check();
  }

  // One recorded attempt: metrics, and a debug line that carries its trace.
  void ended(const detail::in_hand& j, job_state s) {
    if (auto* m = o().metrics) {
      auto started = j.deadline - j.timeout;
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
      m->record(j.job.queue, j.job.type, s, took.count());
    }
    if (log_enabled(log_level::debug))
      log_debug("job attempt recorded", {{"job_id", j.job.id},
                                         {"trace_id", j.job.trace_id},
                                         {"attempt", j.job.attempt},
                                         {"state", to_string(s)}});
  }

  // Gauges only the coordinator thread can read.
  void gauge() {
    if (auto* m = o().metrics) {
      m->in_flight.with({o().queue}).set(static_cast<double>(running.size()));
      double open = db && db->is_open() ? 1 : 0;
      m->pools.set("worker", open, open, 0);
    }
  }

  job_outcome outcome_of(const claimed_job& job, const handler_result& result) {
    double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return detail::decide_outcome(job, result, o().retry, u, std::chrono::system_clock::now());
  }

  // A handler that stopped on request returns an error (any kind): the
  // attempt was cancelled or timed out. A result means it finished anyway.
  job_outcome outcome_for(const detail::finished_job& f) {
    const auto* j = running.find(f.job.id);
    auto why = j ? j->why : detail::stop_reason::none;
    if (why == detail::stop_reason::none || std::holds_alternative<boost::json::value>(f.outcome))
      return outcome_of(f.job, f.outcome);
    if (why == detail::stop_reason::cancel)
      return {f.job.id, f.job.attempt, job_state::cancelled, "", "cancelled while running", ""};
    return outcome_of(f.job, handler_error::retryable(timed_out(j->timeout)));
  }

  // The outcomes are committed: now their messages may go.
  void completed(const std::vector<job_outcome>& outcomes) {
    std::vector<uint64_t> tags;
    for (const auto& out : outcomes)
      if (const auto* j = running.find(out.id); j && j->tag != 0) tags.push_back(j->tag);
    after_commit([&](consumer& c) { c.ack_all(std::move(tags)); });
    for (const auto& out : outcomes) {
      auto* j = running.find(out.id);
      if (!j) continue;
      ended(*j, out.state);
      auto trace = std::move(j->job.trace_id);
      running.erase(out.id);
      switch (out.state) {
        case job_state::succeeded: ++w.stats_.succeeded; break;
        case job_state::cancelled:
          ++w.stats_.cancelled;
          log_info("job cancelled",
                   {{"job_id", out.id}, {"trace_id", trace}, {"attempt", out.attempt}});
          break;
        case job_state::failed:
          ++w.stats_.failed;
          log_info("attempt failed; retry scheduled", {{"job_id", out.id},
                                                       {"trace_id", trace},
                                                       {"attempt", out.attempt},
                                                       {"error", out.error},
                                                       {"retry_at", out.run_at}});
          break;
        case job_state::dead:
          ++w.stats_.dead;
          log_warn("job dead", {{"job_id", out.id},
                                {"trace_id", trace},
                                {"attempt", out.attempt},
                                {"error", out.error}});
          break;
        default: ++w.stats_.snoozed; break;
      }
    }
    finished.clear();
  }

  // Commit hooks run only for outcomes that will land (their rows locked
  // first), each in a savepoint: a hook that throws fails its attempt alone.
  void run_commit_hooks(pqxx::work& tx, std::vector<job_outcome>& outcomes) {
    std::vector<std::size_t> with_hooks;
    std::vector<job_outcome> candidates;
    for (std::size_t i = 0; i < finished.size(); ++i)
      if (!finished[i].hooks.empty()) {
        with_hooks.push_back(i);
        candidates.push_back(outcomes[i]);
      }
    if (with_hooks.empty()) return;
    auto owned = lock_owned_attempts(tx, candidates, o().worker_id);
    for (auto i : with_hooks) {
      if (std::find(owned.begin(), owned.end(), outcomes[i].id) == owned.end()) continue;
      try {
        pqxx::subtransaction sub(tx, "hook");
        for (auto& hook : finished[i].hooks) hook(sub);
        sub.commit();
      } catch (const pqxx::broken_connection&) {
        throw;
      } catch (const std::exception& e) {
        outcomes[i] =
            outcome_of(finished[i].job,
                       handler_error::retryable(std::string("commit hook failed: ") + e.what()));
      }
    }
  }

  void renew_leases() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_lease_renewal || running.empty()) return;
    next_lease_renewal = now + o().lease / 3;
    std::vector<std::string> ids;
    for (auto& [id, j] : running.jobs()) ids.push_back(id);
    auto cancelled = with_db([&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto r = extend_leases(tx, ids, o().worker_id, o().lease);
      tx.commit();
      return r;
    });
    // Normally known from NOTIFY already; this catches the ones missed.
    cancel_requests.insert(cancel_requests.end(), cancelled.begin(), cancelled.end());
  }

  void take_cancel_requests() {
    if (db && listener) db->get_notifs();  // non-blocking
    auto now = std::chrono::steady_clock::now();
    for (const auto& id : cancel_requests)
      if (running.cancel(id, now))
        log_info("cancel requested; stopping the handler", {{"job_id", id}});
    cancel_requests.clear();
  }

  // Stops jobs past their timeout; records the stopped ones whose handler
  // has not returned within the grace without it, and acks them. Their
  // handler's thread stays busy until it returns; its result is discarded.
  void stop_overdue() {
    auto now = std::chrono::steady_clock::now();
    for (const auto& id : running.expire(now)) {
      ++w.stats_.timed_out;
      log_warn("job timed out; stopping the handler",
               {{"job_id", id}, {"timeout_ms", running.find(id)->timeout.count()}});
    }
    auto overdue = running.overdue(now);
    if (overdue.empty()) return;
    std::vector<job_outcome> outcomes;
    for (const auto& j : overdue) {
      if (j.why == detail::stop_reason::cancel)
        outcomes.push_back({j.job.id, j.job.attempt, job_state::cancelled, "",
                            fmt::format("cancelled; the handler did not stop within {} ms",
                                        o().cancel_grace.count()),
                            ""});
      else
        outcomes.push_back(outcome_of(j.job, handler_error::retryable(timed_out(j.timeout))));
    }
    with_db([&](pqxx::connection& c) {
      pqxx::work tx(c);
      complete_jobs(tx, outcomes, o().worker_id);
      tx.commit();
      return 0;
    });
    for (std::size_t i = 0; i < overdue.size(); ++i) {
      log_warn(
          "handler did not stop in time; written off, its thread stays busy until it returns",
          {{"job_id", outcomes[i].id}, {"recorded", std::string(to_string(outcomes[i].state))}});
      if (overdue[i].tag != 0) after_commit([&](consumer& c) { c.ack(overdue[i].tag); });
      ended(overdue[i], outcomes[i].state);
      running.write_off(overdue[i].job.id);
      if (outcomes[i].state == job_state::cancelled) ++w.stats_.cancelled;
    }
    broker_check();
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
        running.stop_all();  // so that the handler threads can be joined
        break;
      }
      try {
        if (!amqp && !stopping) connect_amqp();
        if (amqp && !stopping)
          receive(idle_poll_ms);
        else {
          // Once stopping, stop_fd stays readable: only a handler's return wakes us.
          struct pollfd p[2] = {{pool.wake_fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
          ::poll(p, stopping ? 1 : 2, idle_poll_ms);
        }
        apply_pause();
        cycle();
        take_cancel_requests();
        stop_overdue();
        renew_leases();
        if (db && db->is_open()) plans.tick(*db);
        gauge();
        backoff = std::chrono::milliseconds(100);
      } catch (const amqp_error& e) {
        lose_amqp(e);
        pause(backoff);
      } catch (const pqxx::failure& e) {
        log_warn("database error; retrying", {{"error", e.what()}});
        drop_db();
        pause(backoff);
      }
    }
    amqp.reset();  // unacked deliveries go back to the queue
  }

  // Backs off before a retry; stop() cuts it short, once: a stopping worker
  // (its stop_fd readable for good) still waits, or it would spin while a
  // server is away during its drain.
  void pause(std::chrono::milliseconds& backoff) {
    struct pollfd p {
      stop_fd, POLLIN, 0
    };
    ::poll(&p, stopping ? 0 : 1, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, max_backoff);
  }
};

worker::worker(worker_options o, const handler_registry& handlers)
    : opts_(std::move(o)), handlers_(handlers) {
  if (opts_.worker_id.empty()) opts_.worker_id = default_worker_id();
  if (!is_known_queue(opts_.queue)) throw std::invalid_argument("unknown queue " + opts_.queue);
  if (opts_.prefetch < opts_.concurrency) opts_.prefetch = opts_.concurrency;
  // Enough messages in hand to fill the async slots too.
  if (handlers_.has_async(opts_.queue) && opts_.prefetch < opts_.async_inflight + opts_.concurrency)
    opts_.prefetch = opts_.async_inflight + opts_.concurrency;
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
