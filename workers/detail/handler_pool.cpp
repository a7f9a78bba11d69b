#include "workers/detail/handler_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>
#include <boost/json/parse.hpp>

namespace jobs::detail {

handler_pool::handler_pool(int threads, const handler_registry& handlers)
    : handlers_(handlers), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

handler_pool::~handler_pool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  ::close(wake_fd_);
}

void handler_pool::submit(claimed_job j, stop_flag stop) {
  {
    std::lock_guard lk(mu_);
    queue_.emplace_back(std::move(j), std::move(stop));
  }
  cv_.notify_one();
}

void handler_pool::take_finished(std::vector<finished_job>& out) {
  uint64_t n;
  [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
  std::lock_guard lk(mu_);
  for (auto& f : finished_) out.push_back(std::move(f));
  finished_.clear();
}

handler_result handler_pool::execute(const claimed_job& j, const std::atomic<bool>& stop,
                                     std::vector<commit_hook>& hooks) {
  const handler_fn* fn = handlers_.find(j.queue, j.type);
  if (!fn)
    return handler_error::permanent("no handler for job type " + j.type + " on queue " + j.queue);
  boost::json::value payload;
  try {
    payload = boost::json::parse(j.payload_json);
  } catch (const std::exception& e) {
    return handler_error::permanent(std::string("payload is not JSON: ") + e.what());
  }
  job_context ctx{j.id, j.tenant, j.queue, j.type, payload, j.attempt, &stop, &hooks};
  try {
    return (*fn)(ctx);
  } catch (const std::exception& e) {
    // A handler that throws failed this attempt; the retry policy decides the rest.
    return handler_error::retryable(std::string("handler threw: ") + e.what());
  } catch (...) {
    return handler_error::retryable("handler threw a non-standard exception");
  }
}

void handler_pool::run() {
  for (;;) {
    claimed_job j;
    stop_flag stop;  // kept alive while the handler may look at it
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      j = std::move(queue_.front().first);
      stop = std::move(queue_.front().second);
      queue_.pop_front();
    }
    auto start = std::chrono::steady_clock::now();
    std::vector<commit_hook> hooks;
    auto outcome = execute(j, *stop, hooks);
    if (!std::holds_alternative<boost::json::value>(outcome)) hooks.clear();
    auto took = std::chrono::steady_clock::now() - start;
    {
      std::lock_guard lk(mu_);
      finished_.push_back({std::move(j), std::move(outcome), took, std::move(hooks)});
    }
    uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(wake_fd_, &one, sizeof one);
  }
}

}  // namespace jobs::detail
