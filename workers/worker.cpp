#include "workers/worker.hpp"

#include "common/log.hpp"
#include "workers/detail/worker_impl.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

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

pqxx::connection& worker::impl::pg() {
  if (!db || !db->is_open()) {
    drop_db();
    db = pg_connect_hot(o().pg_url);
    listener = std::make_unique<detail::cancel_listener>(*db, cancel_requests);
    pauses.attach(*db);
    next_lease_renewal = {};
  }
  return *db;
}

void worker::impl::drop_db() {
  pauses.detach();
  listener.reset();  // unregisters from the connection, so first
  db.reset();
}

void worker::impl::connect_amqp() {
  // A worker started (or reconnected) while its queue is paused takes no
  // message until the resume: it would hold up to its prefetch unstarted.
  paused = with_db([&](pqxx::connection& c) { return pauses.paused(c); });
  amqp = std::make_unique<consumer>(brokers.connect(o().heartbeat_s), o().queue, o().prefetch,
                                    topology_options{o().delivery_limit, o().dead_letter_max},
                                    !paused);
  if (paused) log_info("queue paused; waiting to consume", {{"queue", o().queue}});
  log_info(paused ? "worker connected" : "worker consuming",
           {{"queue", o().queue},
            {"broker", fmt::format("{}:{}", brokers.current().host, brokers.current().port)},
            {"worker_id", o().worker_id},
            {"concurrency", o().concurrency},
            {"async_inflight", o().async_inflight},
            {"prefetch", o().prefetch},
            {"cpus", hold.cpus()}});
}

void worker::impl::try_connect() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_connect) return;
  try {
    connect_amqp();
    connect_backoff = std::chrono::milliseconds(100);
  } catch (const amqp_error& e) {
    log_warn("broker unreachable; retrying",
             {{"error", e.what()},
              {"retry_in_ms", static_cast<std::int64_t>(connect_backoff.count())},
              {"running", static_cast<std::int64_t>(running.size())}});
    next_connect = now + connect_backoff;
    connect_backoff = std::min(connect_backoff * 2, max_backoff);
  }
}

int worker::impl::until_connect() const {
  if (amqp) return idle_poll_ms;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  next_connect - std::chrono::steady_clock::now())
                  .count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, idle_poll_ms));
}

void worker::impl::lose_amqp(const std::exception& e) {
  log_warn("broker connection lost", {{"error", e.what()}});
  lose_amqp_quietly();
}

void worker::impl::lose_amqp_quietly() {
  amqp.reset();
  // The broker requeues everything unacked; running jobs still commit, and
  // their redelivered messages find them finished, or in hand here (held
  // until they end: worker::impl::release).
  waiting.clear();
  reclaimed.clear();
  for (auto& [id, j] : running.jobs()) {
    j.tag = 0;
    j.more_tags.clear();
  }
}

void worker::impl::hand_back_if_cut_off() {
  if (!amqp || stopping || !db_failing_since ||
      std::chrono::steady_clock::now() - *db_failing_since < o().lease)
    return;
  log_warn("database away longer than a lease: handing the broker's messages back until it answers",
           {{"waiting", static_cast<std::int64_t>(waiting.size())},
            {"running", static_cast<std::int64_t>(running.size())}});
  lose_amqp_quietly();
}

void worker::impl::receive(int wait_ms) {
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

void worker::impl::apply_pause() {
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

void worker::impl::broker_check() {
  if (!broker_failure) return;
  amqp_error e(*broker_failure);
  broker_failure.reset();
  lose_amqp(e);
}

void worker::impl::run() {
  auto backoff = std::chrono::milliseconds(100);
  std::chrono::steady_clock::time_point drain_deadline{}, give_up{};
  bool cancelled = false, handing_back = false;
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
    if (stopping && !handing_back && std::chrono::steady_clock::now() > drain_deadline) {
      // The handlers still running are asked to stop; what they return, or
      // after the cancel grace their jobs without them (stop_overdue), is
      // recorded as handed back: due again now, the attempt not counted.
      handing_back = true;
      give_up = std::chrono::steady_clock::now() + o().cancel_grace + std::chrono::seconds(5);
      log_warn("drain deadline passed; stopping the handlers, their jobs go back to the queue",
               {{"running", static_cast<std::int64_t>(running.size())},
                {"grace_ms", static_cast<std::int64_t>(o().cancel_grace.count())}});
      collect_finished();  // a handler that just returned keeps its outcome
      running.stop_all(std::chrono::steady_clock::now(),
                       [this](const detail::in_hand& j) { return returned(j); });
    }
    if (handing_back && std::chrono::steady_clock::now() > give_up) {
      // The database did not take them in time: their leases return them.
      log_warn("could not record the jobs handed back; their leases will return them",
               {{"running", static_cast<std::int64_t>(running.size())}});
      break;
    }
    bool leases_held = false;  // the database answered this turn and keeps the leases
    try {
      // Not while the database is failing it: messages received then would
      // only be handed back again a lease later, one more delivery each.
      if (!amqp && !stopping && !db_failing_since) try_connect();
      if (amqp && !stopping) {
        auto now = std::chrono::steady_clock::now();
        receive(std::min(hold.wait_ms(now, idle_poll_ms), pace.wait_ms(now, idle_poll_ms)));
      } else {
        // Once stopping, stop_fd stays readable: only a handler's return wakes us.
        struct pollfd p[2] = {{pool.wake_fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        ::poll(p, stopping ? 1 : 2, stopping ? idle_poll_ms : until_connect());
      }
      apply_pause();
      // A round the database refused does not hold back the leases of the
      // jobs in hand, their cancels and their timeouts: those are statements
      // of their own, which may well succeed where the round did not. (A
      // lost connection fails them too: the loop's backoff comes first.)
      std::exception_ptr round_failed;
      try {
        cycle();
      } catch (const pqxx::sql_error&) {
        round_failed = std::current_exception();
      } catch (const pqxx::transaction_rollback&) {  // a deadlock: not an sql_error in libpqxx 6
        round_failed = std::current_exception();
      }
      take_cancel_requests();
      stop_overdue();
      renew_leases();
      if (round_failed) {
        leases_held = running.empty() || !renewal_failed;
        std::rethrow_exception(round_failed);
      }
      if (db && db->is_open()) plans.tick(*db);
      gauge();
      backoff = std::chrono::milliseconds(100);
      db_failing_since.reset();
    } catch (const amqp_error& e) {
      // Not pause(): the jobs in hand still end, and are recorded, meanwhile.
      lose_amqp(e);
      next_connect = std::chrono::steady_clock::now() + connect_backoff;
      connect_backoff = std::min(connect_backoff * 2, max_backoff);
    } catch (const pqxx::failure& e) {
      log_warn("database error; retrying", {{"error", e.what()}});
      drop_db();
      // A round refused while the last renewal of the jobs in hand landed
      // (or with none in hand) is no cut-off: the database answers, and the
      // jobs and the messages are still this worker's.
      if (leases_held)
        db_failing_since.reset();
      else if (!db_failing_since)
        db_failing_since = std::chrono::steady_clock::now();
      hand_back_if_cut_off();
      pause(backoff);
    }
  }
  amqp.reset();  // unacked deliveries go back to the queue
}

void worker::impl::pause(std::chrono::milliseconds& backoff) {
  struct pollfd p {
    stop_fd, POLLIN, 0
  };
  // With jobs in hand, no later than their next renewal (a short lease must
  // not run out in the backoff); a renewal overdue (the database away) is
  // tried again after the backoff, or a third of a lease if that is sooner.
  auto wait = backoff;
  if (!running.empty()) {
    auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_lease_renewal - std::chrono::steady_clock::now());
    wait = until > std::chrono::milliseconds(0) ? std::min(backoff, until)
                                                : std::min(backoff, o().lease / 3);
  }
  ::poll(&p, stopping ? 0 : 1, static_cast<int>(wait.count()));
  backoff = std::min(backoff * 2, max_backoff);
}

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

std::size_t worker::handlers_left() const { return impl_->running.busy(); }

void worker::stop() noexcept {
  impl_->stopping = true;
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->stop_fd, &one, sizeof one);
}

}  // namespace jobs
