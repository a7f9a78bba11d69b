#include "workers/supervisor/supervisor.hpp"

#include "common/db.hpp"
#include "common/job.hpp"
#include "common/log.hpp"
#include "common/queue_stats.hpp"
#include "queues/amqp.hpp"
#include "queues/brokers.hpp"
#include "workers/supervisor/scaler.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <set>

extern char** environ;

namespace jobs {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr milliseconds backoff_cap{60000};
constexpr milliseconds max_wait_step{200};  // signals are checked at least this often

sigset_t supervisor_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGCHLD);
  return s;
}

struct child {
  pid_t pid = -1;
  clock::time_point started;
  bool draining = false;
  clock::time_point drain_started{};
  int slot = -1;  ///< its metrics port offset; -1 without worker metrics ports
};

struct pool {
  explicit pool(const pool_spec& s) : queue(s.queue), scale(s.policy) {}
  std::string queue;
  scaler scale;
  std::vector<child> children;
  int desired = 0;
  int deaths = 0;  ///< in a row
  clock::time_point next_start{};
  int active() const {
    return static_cast<int>(std::count_if(children.begin(), children.end(),
                                          [](const child& c) { return !c.draining; }));
  }
};

// The environment with JOBS_WORKER_METRICS_PORT set to `port`, built before
// fork: the child of a threaded process may not allocate.
std::vector<std::string> worker_environment(int port) {
  constexpr std::string_view key = "JOBS_WORKER_METRICS_PORT=";
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with(key)) out.emplace_back(*e);
  out.push_back(fmt::format("{}{}", key, port));
  return out;
}

// `port` > 0: the worker's JOBS_WORKER_METRICS_PORT; 0: the inherited environment.
pid_t spawn_worker(const std::string& bin, const std::string& queue, int port) {
  std::vector<std::string> env_text;
  std::vector<char*> envp;
  if (port > 0) {
    env_text = worker_environment(port);
    for (auto& e : env_text) envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // The worker drains when its supervisor dies, however it died.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (port > 0)
      execle(bin.c_str(), "jobs-worker", "--queue", queue.c_str(), static_cast<char*>(nullptr),
             envp.data());
    else
      execl(bin.c_str(), "jobs-worker", "--queue", queue.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
  return "unknown";
}

class supervisor {
 public:
  explicit supervisor(const supervisor_options& o) : opts_(o) {
    for (const auto& p : o.pools) pools_.emplace_back(p);
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    unsigned char r[3];
    RAND_bytes(r, sizeof r);
    id_ = fmt::format("{}:{}:{:02x}{:02x}{:02x}", host, getpid(), r[0], r[1], r[2]);
  }

  int run() {
    log_info("supervisor started", {{"supervisor_id", id_}, {"pools", pools_.size()}});
    auto signals = supervisor_signals();
    auto next_tick = clock::now();
    bool stopping = false;
    while (!stopping) {
      auto now = clock::now();
      if (now >= next_tick) {
        tick(now);
        next_tick = now + opts_.interval;
      }
      reconcile(clock::now());
      auto wait = std::min(duration_cast<milliseconds>(next_tick - clock::now()), max_wait_step);
      timespec ts{0, std::max<long>(1, static_cast<long>(wait.count())) * 1'000'000};
      int sig = sigtimedwait(&signals, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT) {
        log_info("signal received; draining every worker", {{"signal", strsignal(sig)}});
        stopping = true;
      }
      reap();
    }
    drain_all();
    try {
      with_reconnect(pg_, opts_.pg_url, [&](pqxx::connection& c) {
        delete_pool_heartbeats(c, id_);
        return 0;
      });
    } catch (const std::exception& e) {
      log_warn("could not remove the pool rows", {{"error", e.what()}});
    }
    log_info("supervisor stopped", {{"supervisor_id", id_}});
    return 0;
  }

 private:
  std::map<std::string, broker_queue> read_broker() {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!amqp_) amqp_ = brokers_.connect(0);
        std::map<std::string, broker_queue> out;
        for (const auto& p : pools_) {
          auto n = inspect_queue(*amqp_, p.queue);
          out[p.queue] = {n.messages, n.consumers};
        }
        return out;
      } catch (const amqp_error&) {
        amqp_.reset();
        if (attempt > 0) throw;
      }
    }
  }

  // Reads the signal, moves the targets, writes the heartbeat rows.
  void tick(clock::time_point now) {
    std::vector<queue_stats> stats;
    try {
      auto broker = read_broker();
      stats = with_reconnect(pg_, opts_.pg_url, [&](pqxx::connection& c) {
        return read_queue_stats(c, broker, scaling_policy{});
      });
    } catch (const std::exception& e) {
      log_warn("scaling signal unavailable; pools keep their size", {{"error", e.what()}});
      return;
    }
    for (auto& p : pools_) {
      auto it =
          std::find_if(stats.begin(), stats.end(), [&](auto& s) { return s.name == p.queue; });
      if (it == stats.end()) continue;
      auto sig = it->signal();
      sig.running = static_cast<int>(p.children.size());
      // A paused queue's backlog waits for an admin, not for more workers
      // (its desired is min, as GET /v1/queues says).
      p.desired =
          it->paused ? p.scale.policy().min_workers : desired_workers(sig, p.scale.policy());
      int before = p.scale.target();
      int after = p.scale.step(p.desired, now);
      if (auto* m = opts_.metrics) {
        auto q = std::string_view(p.queue);
        m->desired.with({q}).set(p.desired);
        m->running.with({q}).set(sig.running);
        m->target.with({q}).set(after);
        m->min.with({q}).set(p.scale.policy().min_workers);
        m->max.with({q}).set(p.scale.policy().max_workers);
        m->ready.with({q}).set(static_cast<double>(sig.ready));
        m->unacked.with({q}).set(static_cast<double>(sig.unacked));
        m->oldest_age.with({q}).set(sig.oldest_waiting_age_s);
        m->completed_rate.with({q}).set(sig.completed_per_s);
        if (after != before) m->scale_events.with({q, after > before ? "up" : "down"}).inc();
      }
      if (after != before)
        log_info("scaling", {{"queue", p.queue},
                             {"from", before},
                             {"to", after},
                             {"desired", p.desired},
                             {"ready", sig.ready},
                             {"unacked", sig.unacked},
                             {"running", sig.running},
                             {"completed_per_s", sig.completed_per_s},
                             {"oldest_waiting_age_s", sig.oldest_waiting_age_s},
                             {"min", p.scale.policy().min_workers},
                             {"max", p.scale.policy().max_workers}});
      else if (p.desired != after)
        log_debug("scaling held by a cool-down",
                  {{"queue", p.queue}, {"target", after}, {"desired", p.desired}});
    }
    auto ttl = 3 * opts_.interval + milliseconds(5000);
    try {
      with_reconnect(pg_, opts_.pg_url, [&](pqxx::connection& c) {
        for (const auto& p : pools_)
          write_pool_heartbeat(c, id_, p.queue, static_cast<int>(p.children.size()), p.desired,
                               p.scale.policy(), ttl);
        return 0;
      });
    } catch (const std::exception& e) {
      log_warn("could not write the pool rows", {{"error", e.what()}});
    }
  }

  // Starts workers up to each target, drains those above it.
  void reconcile(clock::time_point now) {
    for (auto& p : pools_) {
      int active = p.active();
      while (active < p.scale.target() && now >= p.next_start) {
        int slot = -1;
        if (opts_.worker_metrics_port > 0) {
          slot = 0;
          while (slots_.contains(slot)) ++slot;
        }
        auto pid = spawn_worker(opts_.worker_bin, p.queue,
                                slot < 0 ? 0 : opts_.worker_metrics_port + slot);
        if (slot >= 0) slots_.insert(slot);
        p.children.push_back({.pid = pid, .started = now, .slot = slot});
        ++active;
        log_info("worker started", {{"queue", p.queue}, {"pid", pid}, {"active", active}});
      }
      while (active > p.scale.target()) {
        // The newest worker: the one with the least work begun, most likely.
        auto it = std::find_if(p.children.rbegin(), p.children.rend(),
                               [](const child& c) { return !c.draining; });
        it->draining = true;
        it->drain_started = now;
        ::kill(it->pid, SIGTERM);
        --active;
        log_info("worker draining", {{"queue", p.queue}, {"pid", it->pid}, {"active", active}});
      }
      for (auto& c : p.children)
        if (c.draining && now - c.drain_started > opts_.drain_timeout) {
          log_warn("worker drain timed out; killing it", {{"queue", p.queue}, {"pid", c.pid}});
          ::kill(c.pid, SIGKILL);
          c.drain_started = now;  // once per timeout
        }
    }
  }

  // Collects exited workers; one that was not asked to exit is replaced
  // after a backoff.
  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      auto now = clock::now();
      for (auto& p : pools_) {
        auto it = std::find_if(p.children.begin(), p.children.end(),
                               [&](const child& c) { return c.pid == pid; });
        if (it == p.children.end()) continue;
        if (it->draining) {
          log_info("worker drained",
                   {{"queue", p.queue}, {"pid", pid}, {"status", exit_text(status)}});
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
          // Stopped by someone else (a SIGTERM from an operator): it drained
          // and exited cleanly. Replaced after the first backoff, not as a
          // death: a crash loop is what the doubling is for.
          p.next_start = now + opts_.restart_backoff;
          log_info(
              "worker exited cleanly, unasked; replacing it",
              {{"queue", p.queue}, {"pid", pid}, {"restart_in_ms", opts_.restart_backoff.count()}});
        } else {
          if (now - it->started >= backoff_cap) p.deaths = 0;
          ++p.deaths;
          auto delay = std::min<milliseconds>(
              backoff_cap, opts_.restart_backoff * (1L << std::min(p.deaths - 1, 16)));
          p.next_start = now + delay;
          if (opts_.metrics) opts_.metrics->restarts.with({p.queue}).inc();
          log_warn("worker died; restarting it after a backoff",
                   {{"queue", p.queue},
                    {"pid", pid},
                    {"status", exit_text(status)},
                    {"deaths_in_a_row", p.deaths},
                    {"restart_in_ms", delay.count()}});
        }
        slots_.erase(it->slot);
        p.children.erase(it);
        break;
      }
    }
  }

  void drain_all() {
    auto now = clock::now();
    for (auto& p : pools_)
      for (auto& c : p.children)
        if (!c.draining) {
          c.draining = true;
          c.drain_started = now;
          ::kill(c.pid, SIGTERM);
        }
    auto signals = supervisor_signals();
    auto remaining = [&] {
      std::size_t n = 0;
      for (const auto& p : pools_) n += p.children.size();
      return n;
    };
    bool killed = false;
    while (remaining() > 0) {
      if (!killed && clock::now() - now > opts_.drain_timeout) {
        log_warn("drain timed out; killing the workers left", {{"workers", remaining()}});
        for (auto& p : pools_)
          for (auto& c : p.children) ::kill(c.pid, SIGKILL);
        killed = true;
      }
      timespec ts{0, max_wait_step.count() * 1'000'000};
      sigtimedwait(&signals, nullptr, &ts);
      reap();
    }
  }

  supervisor_options opts_;
  std::vector<pool> pools_;
  std::string id_;
  std::unique_ptr<pqxx::connection> pg_;
  broker_list brokers_{opts_.amqp_url};  ///< the nodes, tried in turn
  std::unique_ptr<amqp_connection> amqp_;
  std::set<int> slots_;  ///< metrics port slots held by live workers
};

}  // namespace

void block_supervisor_signals() {
  auto s = supervisor_signals();
  sigprocmask(SIG_BLOCK, &s, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int run_supervisor(const supervisor_options& o) {
  if (o.pools.empty()) throw std::invalid_argument("no worker pools to run");
  if (access(o.worker_bin.c_str(), X_OK) != 0)
    throw std::invalid_argument("worker binary not executable: " + o.worker_bin);
  supervisor s(o);
  return s.run();
}

}  // namespace jobs
