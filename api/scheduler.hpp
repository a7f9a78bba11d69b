#pragma once
// Publishes jobs whose time has come: `scheduled` (run_at in the future at
// submission, or snoozed) and `failed` (a retry after backoff).
//
// Every `interval` it locks up to `batch` due rows with FOR UPDATE SKIP
// LOCKED, publishes them with confirms, marks the confirmed ones `queued`
// and commits. Several API processes may run it at once: a row locked by one
// is skipped by the others, so no job is published twice by two schedulers.
// A worker whose claim reaches a row still locked here waits for the commit
// and then sees it `queued`.
//
// It is also the recovery path: the `queued` jobs of a publish batch whose
// deadline passed unsettled (the API died between its commit and the
// broker's confirms) are published again. And it is the rescuer: a `running` job whose lease
// expired (its worker died, or lost PostgreSQL for longer than the lease) gets an attempt row for
// the lost attempt and is republished, or ends `dead` when it has no attempt left. A late
// completion from the old worker no longer lands.
//
// Thread-safety: owns its thread; construct and destroy from one thread.

#include "queues/publisher.hpp"

#include <pqxx/connection>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace jobs {

class scheduler {
 public:
  static constexpr int batch = 500;

  scheduler(std::string pg_url, publisher& pub, std::chrono::milliseconds interval);
  ~scheduler();

  std::atomic<long> published{0};
  std::atomic<long> rescued{0};
  std::atomic<long> recovered{0};

 private:
  void run();
  int tick();  ///< publishes one batch; returns how many were due
  int publish_due(pqxx::connection& c);

  std::string pg_url_;
  publisher& pub_;
  std::chrono::milliseconds interval_;
  std::unique_ptr<pqxx::connection> db_;  // the scheduler thread's own
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace jobs
