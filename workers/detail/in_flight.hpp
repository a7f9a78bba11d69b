#pragma once
// The jobs a worker has in hand, each with its stop flag and deadlines.
//
// A job is stopped (its flag set, so its handler sees stop_requested()) when
// a client cancels it or when its execution timeout passes. If its handler
// has not returned `grace` after that, the job is overdue: the coordinator
// records it without the handler and writes the handler off. A written-off
// handler still occupies its thread until it returns; its result is then
// discarded.
//
// Pure bookkeeping for the coordinator thread (not thread-safe); the caller
// passes the time, so tests drive it with a made-up clock.

#include "common/store.hpp"
#include "workers/detail/handler_pool.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace jobs::detail {

// shutdown: the drain deadline passed while the handler ran; the job goes
// back to the queue, its attempt not counted. lost: the job's lease ran out
// and it was taken from this worker; nothing it returns will be recorded.
enum class stop_reason { none, cancel, timeout, shutdown, lost };

struct in_hand {
  claimed_job job;   ///< as claimed, without its payload
  uint64_t tag = 0;  ///< its delivery; 0 when the channel it came on was lost
  /// Further deliveries of the job received while it is in hand (published
  /// again when its lease ran out, or by the outbox's recovery), held until
  /// it ends: then acked with `tag` if its outcome landed, else claimed again.
  std::vector<uint64_t> more_tags;
  std::chrono::milliseconds timeout{};
  std::chrono::steady_clock::time_point deadline{};  ///< when the timeout passes
  stop_reason why = stop_reason::none;
  std::chrono::steady_clock::time_point grace_until{};  ///< overdue after this, once stopped
  stop_flag flag;
  bool async = false;  ///< run by an async handler (counted against its own slots)
};

class in_flight {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit in_flight(std::chrono::milliseconds grace) : grace_(grace) {}

  /// Tracks a claimed job; its timeout is the job's own or `default_timeout`.
  /// Returns the stop flag to hand to the pool with it.
  stop_flag start(const claimed_job& j, uint64_t tag, std::chrono::milliseconds default_timeout,
                  time_point now, bool async = false);
  in_hand* find(const std::string& id);
  /// Its outcome is recorded: forget it.
  void erase(const std::string& id) { jobs_.erase(id); }
  std::unordered_map<std::string, in_hand>& jobs() { return jobs_; }
  bool empty() const { return jobs_.empty(); }
  std::size_t size() const { return jobs_.size(); }
  /// Handler threads in use: the jobs in hand plus the handlers written off.
  std::size_t busy() const { return jobs_.size() + written_off_.size(); }
  /// The same for one kind: sync handlers (threads) or async ones (in-flight slots).
  std::size_t busy(bool async) const;

  /// A client cancelled the job: stops it (a cancel overrides a timeout).
  /// False when it is not in hand or already cancelled.
  bool cancel(const std::string& id, time_point now);
  /// The job's lease was lost (its renewal found it taken): stops it. False
  /// when it is not in hand or already known lost.
  bool lose(const std::string& id, time_point now);
  /// Stops the jobs whose timeout has passed at `now` and returns their ids;
  /// not those for which `returned` is true (their handler's outcome, not
  /// yet recorded, is what they did: a timeout would replace it).
  std::vector<std::string> expire(time_point now,
                                  const std::function<bool(const in_hand&)>& returned = {});
  /// Stopped jobs whose grace has passed: to be recorded without their handler.
  std::vector<in_hand> overdue(time_point now) const;
  /// Forgets the job but counts its handler as busy until it returns.
  void write_off(const std::string& id);
  /// True when the handler of this claim (claimed_job::claim) was written
  /// off: its result is to be discarded, and its thread counts as free again.
  bool discard(const std::string& id, std::uint64_t claim);
  /// The drain deadline passed: stops every handler not stopped already
  /// (a cancel or a timeout keeps its reason), each with its grace from `now`;
  /// not those for which `returned` is true (as for expire()).
  void stop_all(time_point now, const std::function<bool(const in_hand&)>& returned = {});

 private:
  void stop(in_hand& j, stop_reason why, time_point now);

  std::chrono::milliseconds grace_;
  std::unordered_map<std::string, in_hand> jobs_;
  std::map<std::pair<std::string, std::uint64_t>, bool> written_off_;  // (id, claim) -> async
};

}  // namespace jobs::detail
