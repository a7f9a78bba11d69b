#pragma once
// Whether the worker's queue is paused (an admin's POST
// /v1/admin/queues/{name}/pause; common/admin_store.hpp). The coordinator
// attaches it to its PostgreSQL connection, where it LISTENs on
// `jobs_queue_pause`; the state is read again after a NOTIFY for this queue,
// after (re)attaching, and every `recheck` in case a NOTIFY was missed.
// A paused worker cancels its consumer (basic.cancel), keeps what it
// received but had not claimed without claiming it (handing it back would
// count towards the quorum queue's delivery limit), and finishes what it
// runs; on resume it consumes again and claims what it kept.
//
// Thread-safety: the coordinator's thread only.

#include <pqxx/pqxx>

#include <chrono>
#include <memory>
#include <string>

namespace jobs::detail {

class pause_control {
 public:
  explicit pause_control(std::string queue,
                         std::chrono::milliseconds recheck = std::chrono::seconds(5));
  ~pause_control();
  /// Listens on `c` (after a (re)connect); the state is read on the next paused().
  void attach(pqxx::connection_base& c);
  /// Before the connection goes away.
  void detach();
  /// The queue's state, read from `c` when it may have changed (notifications
  /// are taken by the connection's get_notifs(), called by the worker).
  bool paused(pqxx::connection& c);
  /// Read the state again at the next paused() (a claim found the queue paused).
  void stale() { stale_ = true; }

 private:
  class listener;
  std::string queue_;
  std::chrono::milliseconds recheck_;
  std::unique_ptr<listener> listener_;
  bool stale_ = true;
  bool paused_ = false;
  std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace jobs::detail
