#include "queues/publisher.hpp"

#include "common/log.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace jobs {

namespace {
constexpr std::chrono::milliseconds max_backoff{5000};
// Poll at least this often so heartbeats are sent while idle.
constexpr int idle_poll_ms = 500;
}  // namespace

publisher::publisher(publisher_options o)
    : opts_(std::move(o)), brokers_(opts_.url), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  thread_ = std::thread([this] { run(); });
}

publisher::~publisher() {
  stop();
  ::close(wake_fd_);
}

void publisher::stop() {
  if (stopping_.exchange(true)) return;
  wake();
  if (thread_.joinable()) thread_.join();
}

void publisher::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void publisher::publish(std::string routing_key, std::string message_id, std::string body,
                        done_fn done, headers extra) {
  item it{std::move(routing_key),
          std::move(message_id),
          std::move(body),
          std::move(done),
          std::chrono::steady_clock::now() + opts_.confirm_timeout,
          std::move(extra)};
  bool was_empty = false;
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      was_empty = pending_.empty();
      pending_.push_back(std::move(it));
      it.done = nullptr;
    }
  }
  if (it.done) return it.done(false, "publisher stopped");
  // Only the publish that finds nothing pending wakes the thread: the ones
  // after it join what it was woken for (the thread reads the eventfd before
  // it takes what is pending).
  if (was_empty) wake();
}

bool publisher::connect() {
  try {
    conn_ = brokers_.connect(opts_.heartbeat_s);
    declare_topology(*conn_, opts_.topology);
    amqp_confirm_select(conn_->raw(), amqp_connection::channel);
    conn_->check_rpc("confirm.select");
    next_tag_ = 1;
    stalled_ = false;
    blocked_ = false;
    connected_ = true;
    outage_logged_ = false;
    log_info("publisher connected",
             {{"host", brokers_.current().host}, {"port", brokers_.current().port}});
    return true;
  } catch (const std::exception& e) {
    if (!outage_logged_)
      log_warn("publisher cannot connect; retrying with backoff", {{"error", e.what()}});
    outage_logged_ = true;
    conn_.reset();
    return false;
  }
}

bool publisher::confirming(std::chrono::milliseconds within) const noexcept {
  return state(within) == "accepting";
}

std::string_view publisher::state(std::chrono::milliseconds within) const noexcept {
  if (!connected_.load()) return "unreachable";
  if (blocked_.load()) return "blocked";
  if (stalled_.load()) return "stalled";
  auto oldest = oldest_unconfirmed_.load();
  if (oldest == 0) return "accepting";
  auto waited = std::chrono::steady_clock::now().time_since_epoch() -
                std::chrono::steady_clock::duration(oldest);
  return waited < within ? "accepting" : "stalled";
}

void publisher::run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    if (!conn_) {
      if (!connect()) {
        expire(std::chrono::steady_clock::now());
        sleep_until(std::chrono::steady_clock::now() + backoff);
        backoff = std::min(backoff * 2, max_backoff);
        continue;
      }
      if (!nacked_) backoff = std::chrono::milliseconds(100);
      // Everything unconfirmed on the old connection is sent again first.
      std::deque<item> again;
      for (auto& [tag, it] : unconfirmed_) again.push_back(std::move(it));
      unconfirmed_.clear();
      returned_.clear();
      std::lock_guard lk(mu_);
      for (auto it = again.rbegin(); it != again.rend(); ++it) pending_.push_front(std::move(*it));
    }
    try {
      // The wake is read before what is pending is taken: a publish after
      // the take then finds it empty and wakes the poll below (read after
      // the take, its wake was lost and it waited for the next confirm).
      uint64_t drained;
      [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
      // A blocked connection is not read by the broker: what is pending
      // stays here (expiring on time) rather than in a socket buffer.
      if (!blocked_) {
        std::deque<item> batch;
        {
          std::lock_guard lk(mu_);
          batch.swap(pending_);
        }
        send_pending(batch);
      }
      read_confirms(unconfirmed_.empty() ? idle_poll_ms : 50);
      expire(std::chrono::steady_clock::now());
      probe(std::chrono::steady_clock::now());
      oldest_unconfirmed_ = unconfirmed_.empty()
                                ? 0
                                : (unconfirmed_.begin()->second.deadline - opts_.confirm_timeout)
                                      .time_since_epoch()
                                      .count();
    } catch (const std::exception& e) {
      log_warn("publisher connection lost", {{"error", e.what()}});
      connected_ = false;
      conn_.reset();
      if (nacked_) {
        // Not too fast round the nodes while the broker keeps refusing.
        sleep_until(std::chrono::steady_clock::now() + backoff);
        backoff = std::min(backoff * 2, max_backoff);
      }
    }
  }
  connected_ = false;
  fail_all("publisher stopped");
}

void publisher::sleep_until(std::chrono::steady_clock::time_point until) {
  // Pending publishes expire on time while we wait (publish() wakes us only
  // when it finds nothing pending, and stop() wakes us to stop).
  while (!stopping_ && std::chrono::steady_clock::now() < until) {
    struct pollfd p {
      wake_fd_, POLLIN, 0
    };
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::clamp<long>(left.count(), 0, 100))) > 0) {
      uint64_t drained;
      [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
    }
    expire(std::chrono::steady_clock::now());
  }
}

void publisher::settle(uint64_t tag, bool multiple, bool ok, const char* why) {
  if (ok) nacked_ = false;
  // Acked or nacked: the broker answers.
  if (stalled_.load(std::memory_order_relaxed) && stalled_.exchange(false))
    log_info("broker confirms again; submissions are taken");
  auto finish = [&](item& it) {
    auto r = returned_.find(it.message_id);
    if (r != returned_.end()) {
      it.done(false, r->second);
      returned_.erase(r);
    } else {
      if (ok && opts_.confirm_seconds) {
        // Enqueued at deadline - confirm_timeout.
        auto waited = std::chrono::steady_clock::now() - (it.deadline - opts_.confirm_timeout);
        opts_.confirm_seconds->observe(std::chrono::duration<double>(waited).count());
      }
      it.done(ok, ok ? "" : why);
    }
  };
  if (!multiple) {
    auto it = unconfirmed_.find(tag);
    if (it != unconfirmed_.end()) {
      finish(it->second);
      unconfirmed_.erase(it);
    }
    return;
  }
  auto end = unconfirmed_.upper_bound(tag);
  for (auto it = unconfirmed_.begin(); it != end; ++it) finish(it->second);
  unconfirmed_.erase(unconfirmed_.begin(), end);
}

void publisher::expire(std::chrono::steady_clock::time_point now) {
  // Tags grow with enqueue time, so the oldest deadlines come first.
  while (!unconfirmed_.empty() && unconfirmed_.begin()->second.deadline <= now) {
    auto& it = unconfirmed_.begin()->second;
    it.done(false, "no confirm from the broker in time");
    if (opts_.unconfirmed && it.routing_key != probe_key) opts_.unconfirmed->inc();
    if (!stalled_.exchange(true))
      log_warn(
          "broker did not confirm a message in time; submissions are refused until it "
          "confirms again",
          {{"confirm_timeout_ms", static_cast<std::int64_t>(opts_.confirm_timeout.count())}});
    unconfirmed_.erase(unconfirmed_.begin());
  }
  std::deque<item> late;
  {
    std::lock_guard lk(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->deadline <= now) {
        late.push_back(std::move(*it));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& it : late)
    it.done(false, blocked_ ? "broker blocked by a resource alarm" : "broker unreachable");
}

void publisher::probe(std::chrono::steady_clock::time_point now) {
  // Messages in flight tell as much as a probe would. Without probes a
  // stall would last until a reconnect (submissions are refused meanwhile,
  // so nothing else is published to be confirmed), and an alarm or a frozen
  // broker would go unnoticed until a job was sent into it.
  if (blocked_ || !unconfirmed_.empty()) {
    next_probe_ = now + probe_every;
    return;
  }
  if (now < next_probe_) return;
  next_probe_ = now + probe_every;
  std::deque<item> one;
  one.push_back({std::string(probe_key), "probe", "", [](bool, std::string_view) {},
                 now + opts_.confirm_timeout});
  send_pending(one);
}

void publisher::fail_all(const char* why) {
  for (auto& [tag, it] : unconfirmed_) it.done(false, why);
  unconfirmed_.clear();
  std::deque<item> rest;
  {
    std::lock_guard lk(mu_);
    rest.swap(pending_);
  }
  for (auto& it : rest) it.done(false, why);
}

}  // namespace jobs
