#pragma once
// The worker's coordinator (worker.hpp): its state and its steps, for the
// files that implement them. workers/worker.cpp: connections, the round
// loop and the drain; worker_cycle.cpp: a round's one transaction (the
// finished jobs' outcomes, then the claims) and what follows its commit;
// worker_upkeep.cpp: leases, cancels, timeouts and gauges.
//
// Everything here runs on the coordinator thread, except `stopping` and
// `stop_fd` (written by worker::stop()).

#include "common/db.hpp"
#include "common/store.hpp"
#include "queues/brokers.hpp"
#include "queues/consumer.hpp"
#include "queues/message.hpp"
#include "workers/detail/handler_pool.hpp"
#include "workers/detail/in_flight.hpp"
#include "workers/detail/pause_control.hpp"
#include "workers/detail/round_hold.hpp"
#include "workers/worker.hpp"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace jobs {

namespace detail {
inline std::string timed_out(std::chrono::milliseconds after) {
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
}  // namespace detail

struct worker::impl {
  worker& w;
  detail::handler_pool pool;
  int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::atomic<bool> stopping{false};
  std::unique_ptr<pqxx::connection> db;
  std::unique_ptr<detail::cancel_listener> listener;  // on *db; reset before it
  std::vector<std::string> cancel_requests;           // job ids from NOTIFY jobs_cancel
  broker_list brokers{w.opts_.amqp_url};
  std::unique_ptr<consumer> amqp;
  // Without a broker the rest of the loop goes on (outcomes recorded, leases
  // renewed, cancels and timeouts applied): only the reconnects wait, each
  // twice as long as the last, up to 5 s.
  std::chrono::steady_clock::time_point next_connect{};
  std::chrono::milliseconds connect_backoff{100};
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
  // A round held back while the handlers keep every core busy: outcomes
  // wait at most 50 ms (workers/detail/round_hold.hpp).
  // Sized by the cores, or fewer under a container's CPU limit (cgroup_cpu.hpp).
  detail::cgroup_cpu cpu_limit;
  detail::round_hold hold{detail::usable_cpus(cpu_limit.limit_cores()),
                          std::chrono::milliseconds(50)};
  detail::cpu_meter cpu;
  // Small rounds spaced while the machine is busy (round_hold.hpp).
  detail::round_pace pace{w.opts_.round_gap};
  detail::machine_meter machine{&cpu_limit};

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
  pqxx::connection& pg();
  void drop_db();

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

  void connect_amqp();
  // connect_amqp() once its backoff has passed; a failure only sets the next
  // attempt. until_connect(): how long the loop may sleep before it (ms).
  void try_connect();
  int until_connect() const;
  void lose_amqp(const std::exception& e);
  // The connection closed: the broker requeues everything unacked, and what
  // this worker held of it is forgotten (tags of a channel no longer open).
  void lose_amqp_quietly();
  void receive(int wait_ms);

  // A paused queue: stop consuming and claim nothing more
  // (workers/detail/pause_control.hpp); resumed: consume again. What was
  // received but not claimed stays in hand, unacked, until the resume:
  // handing it back would count a delivery each time (a quorum queue's
  // delivery limit), and a queue paused and resumed often enough would
  // dead-letter queued jobs' messages.
  void apply_pause();

  // The messages to claim this cycle: sync jobs take free handler threads,
  // async jobs free in-flight slots (counting those whose outcome this cycle
  // commits first). Messages for a kind without room wait for the next round.
  struct claims {
    std::vector<std::string> ids;
    std::unordered_map<std::string, uint64_t> tags;
    std::vector<std::pair<delivery, job_message>> taken;
  };

  claims pick_claims(const std::vector<detail::finished_job>& ending);

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

  void broker_check();

  // Claimed and committed: the jobs go to the handlers; the messages of the
  // deferred and the unclaimable go.
  void start_claimed(capped_claim& got, claims& c);
  // Of the messages whose job a round did not claim, those to keep rather
  // than drop: all of them while the queue is paused (or when that cannot
  // be read), else a job claimable again, once (`reclaimed`).
  std::unordered_set<std::string> not_to_drop(
      const std::unordered_map<std::string, uint64_t>& unclaimed);
  std::unordered_set<std::string> reclaimed;
  std::uint64_t claims_made = 0;  // numbers each claim (claimed_job::claim)
  // Since when every round has failed on the database (none: it works).
  std::optional<std::chrono::steady_clock::time_point> db_failing_since;
  // The last lease renewal tried did not land: the jobs in hand may not be
  // this worker's any more.
  bool renewal_failed = false;
  // Past a lease without the database, the broker's messages go back to it
  // (the connection is closed, and reopened once the database answers):
  // held here they could not run, while another worker may have it.
  void hand_back_if_cut_off();

  // One transaction a cycle: the outcomes of the handlers that returned
  // (with their commit hooks), then the claims of the messages received.
  // After the commit the finished jobs' messages are acked and the claimed
  // jobs start. If it fails, both stay for the next cycle.
  void cycle();
  // Whether this round waits (round_hold): only while none of the finished
  // jobs must go at once (round_hold::may_wait).
  bool hold_round();
  // Whether this round waits for the pace's gap (round_pace): not when any
  // finished job is being stopped or is due within the gap.
  bool pace_round();
  // Handler threads, and async slots when the queue has async handlers.
  std::size_t slots() const;
  int cores() const { return hold.cores(); }

  // One recorded attempt: metrics, and a debug line that carries its trace.
  void ended(const detail::in_hand& j, job_state s);

  // Gauges only the coordinator thread can read.
  void gauge();

  job_outcome outcome_of(const claimed_job& job, const handler_result& result);

  // A handler that stopped on request returns an error (any kind): the
  // attempt was cancelled, timed out, or cut short by the drain deadline
  // (handed_back). A result means it finished anyway.
  job_outcome outcome_for(const detail::finished_job& f);
  // The round's write failed on a data error (SQLSTATE class 22, 23 or 54):
  // something in an outcome PostgreSQL will never take, which would stall
  // the worker, retrying the round for ever, while the queue's other jobs
  // die of the delivery limit. Each outcome is tried alone (in a transaction
  // of its own, rolled back) and each one refused becomes a permanent error saying so,
  // so the job ends dead; one refused a second time gets a fixed error text.
  // The next round writes them. False when none was refused alone.
  bool set_aside_unstorable(const std::vector<job_outcome>& outcomes);
  std::unordered_set<std::string> set_aside;  // job ids whose outcome was refused once
  // Jobs whose outcome a round sent without learning whether it landed.
  std::unordered_set<std::string> in_doubt;
  // A job whose handler the drain deadline stopped: back to `scheduled`, due
  // now (the scheduler publishes it again), its attempt not counted, as a
  // snooze; the attempt row says why.
  job_outcome handed_back(const claimed_job& job) const;
  // A job whose lease was lost: an outcome that will not land (the attempt
  // is no longer this worker's), sent only to learn that it did not.
  job_outcome lease_lost(const claimed_job& job);

  // The outcomes are committed: now the messages of those that landed may
  // go (`landed`: their ids). `retried`: the round was sent again on a new
  // connection, so an outcome missing from `landed` may have landed with
  // the first.
  void completed(const std::vector<job_outcome>& outcomes, const std::vector<std::string>& landed,
                 bool retried);
  // The job in hand ended. If its outcome landed, its deliveries are added
  // to `acks`. If it did not, the job was taken from this worker (its lease
  // ran out: the scheduler queued it again and published it once more, or
  // another worker took it over): its deliveries go back to `waiting`, and
  // the next round claims the job or drops them as for any message, since
  // one of them may be the only message of a job queued again.
  void release(detail::in_hand& j, bool landed, std::vector<uint64_t>& acks);
  // An attempt whose outcome did not land: counted and logged.
  void lost_attempt(int attempt, const std::string& id, const std::string& trace,
                    std::string_view outcome);

  // Commit hooks run only for successes that will land (their rows locked
  // first), each job's in a savepoint: a hook that throws, or whose
  // statement fails, fails its attempt alone, and what it wrote is undone.
  void run_commit_hooks(pqxx::work& tx, std::vector<job_outcome>& outcomes);

  void renew_leases();
  void take_cancel_requests();

  /// Takes the handlers' outcomes from the pool into `finished`, but those
  /// of handlers written off (recorded without them).
  void collect_finished();
  /// True when the job's handler returned and its outcome waits in
  /// `finished` for a round that lands: no timeout or drain stops it.
  bool returned(const detail::in_hand& j) const;
  // Stops jobs past their timeout; records the stopped ones whose handler
  // has not returned within the grace without it, and acks them. Their
  // handler's thread stays busy until it returns; its result is discarded.
  void stop_overdue();

  // The rounds, until stop() and the drain are done (worker.hpp).
  void run();

  // Backs off before a retry; stop() cuts it short, once: a stopping worker
  // (its stop_fd readable for good) still waits, or it would spin while a
  // server is away during its drain.
  void pause(std::chrono::milliseconds& backoff);
};

}  // namespace jobs
