#pragma once
// The write path of submissions: group commit, then publish with confirms.
//
// Concurrent submissions queue here; one thread writes everything waiting
// (up to `batch_max` rows) in one INSERT and one commit, so N concurrent
// requests cost one round trip and one WAL flush. Committed `queued` jobs go
// to the publisher; each request completes when the broker confirmed its
// message. A `scheduled` job completes at commit (the scheduler publishes it
// when due).
//
// If the broker refuses or does not confirm in time, the row is deleted
// again (if no worker took it meanwhile) and the request gets 503: a 202 is
// only ever given for a job that is both committed and confirmed.
//
// Thread-safety: submit() from any thread; `done` runs on the submitter's or
// the publisher's thread and must not block.

#include "common/problem.hpp"
#include "common/store.hpp"
#include "queues/publisher.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace jobs {

class submitter {
 public:
  using done_fn = std::function<void(std::optional<problem>)>;

  submitter(std::string pg_url, publisher& pub, int batch_max);
  ~submitter();  ///< finishes what is queued, then joins

  void submit(new_job job, done_fn done);

 private:
  void run();
  void write(std::vector<std::pair<new_job, done_fn>>& batch);
  void undo(std::vector<std::pair<std::string, done_fn>>& failed);

  std::string pg_url_;
  publisher& pub_;
  int batch_max_;
  std::unique_ptr<pqxx::connection> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<new_job, done_fn>> queue_;
  std::vector<std::pair<std::string, done_fn>> unconfirmed_;  // job id, request: to undo
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace jobs
