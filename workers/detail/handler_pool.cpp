#include "workers/detail/handler_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <optional>

namespace jobs::detail {

finished_list::finished_list() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
}

finished_list::~finished_list() { ::close(wake_fd_); }

// Only the push that finds the list empty writes the eventfd: a later one
// joins jobs the coordinator is already woken for. take() reads the eventfd
// before it empties the list, so a push between the two either finds jobs
// still there (and they are taken together) or writes again (at worst one
// wake that finds the list empty).
void finished_list::push(finished_job f) {
  bool was_empty;
  {
    std::lock_guard lk(mu_);
    was_empty = jobs_.empty();
    jobs_.push_back(std::move(f));
  }
  if (!was_empty) return;
  uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(wake_fd_, &one, sizeof one);
}

void finished_list::take(std::vector<finished_job>& out) {
  uint64_t n;
  [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
  std::lock_guard lk(mu_);
  for (auto& f : jobs_) out.push_back(std::move(f));
  jobs_.clear();
}

handler_pool::handler_pool(int threads, const handler_registry& handlers)
    : handlers_(handlers), finished_(std::make_shared<finished_list>()) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

handler_pool::~handler_pool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    queue_.clear();  // not started: the worker gave up on them, their leases return them
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

// Threads are woken a few at a time while handlers are quick: a woken
// thread that leaves jobs in the queue wakes the next, and jobs that finish
// in less than a wake takes run on the threads already awake (a cycle of 100
// noop jobs woke 100 threads, two context switches each). Once handlers take
// longer (most of the recent ones, sync handlers and the start of async
// ones: a share, so that a quick job preempted for a time slice does not
// count as slow), every queued job wakes a thread at once, as each needs one
// anyway: woken one after another on busy cores, 10 ms jobs
// started and finished spread out, and their completions took more commits.
constexpr int max_waking = 2;
constexpr auto quick_job = std::chrono::microseconds(250);

int handler_pool::wakes_locked() {
  // No more wakes under way than jobs queued, nor than threads waiting.
  int limit = static_cast<int>(queue_.size());
  if (quick_share_ >= 0.5) limit = std::min(limit, max_waking);
  limit = std::min(limit, idle_);
  int n = std::max(0, limit - waking_);
  waking_ += n;
  return n;
}

void handler_pool::submit(claimed_job j, stop_flag stop) {
  std::vector<queued_job> one;
  one.emplace_back(std::move(j), std::move(stop));
  submit(std::move(one));
}

void handler_pool::submit(std::vector<queued_job> jobs) {
  int wakes;
  {
    std::lock_guard lk(mu_);
    for (auto& j : jobs) queue_.push_back(std::move(j));
    wakes = wakes_locked();
  }
  while (wakes-- > 0) cv_.notify_one();
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

namespace {
// What an async handler's context views, kept alive until its completion runs.
struct async_job {
  claimed_job job;
  stop_flag stop;
  boost::json::value payload;
  std::vector<commit_hook> hooks;
  std::optional<job_context> ctx;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::atomic<bool> done{false};
};
}  // namespace

void handler_pool::start_async(claimed_job j, stop_flag stop, const async_handler_fn& fn) {
  auto a = std::make_shared<async_job>();
  a->job = std::move(j);
  a->stop = std::move(stop);
  completion done = [a, sink = finished_](handler_result r) {
    if (a->done.exchange(true)) return;
    std::vector<commit_hook> hooks;
    if (std::holds_alternative<boost::json::value>(r)) hooks = std::move(a->hooks);
    sink->push({std::move(a->job), std::move(r), std::chrono::steady_clock::now() - a->start,
                std::move(hooks)});
  };
  try {
    a->payload = boost::json::parse(a->job.payload_json);
  } catch (const std::exception& e) {
    done(handler_error::permanent(std::string("payload is not JSON: ") + e.what()));
    return;
  }
  const auto& job = a->job;
  a->ctx.emplace(job_context{job.id, job.tenant, job.queue, job.type, a->payload, job.attempt,
                             a->stop.get(), &a->hooks});
  try {
    fn(*a->ctx, done);
  } catch (const std::exception& e) {
    done(handler_error::retryable(std::string("handler threw: ") + e.what()));
  } catch (...) {
    done(handler_error::retryable("handler threw a non-standard exception"));
  }
}

void handler_pool::run() {
  std::optional<std::chrono::steady_clock::duration> took;  // the last job's handler time
  for (;;) {
    claimed_job j;
    stop_flag stop;  // kept alive while the handler may look at it
    {
      std::unique_lock lk(mu_);
      if (took) quick_share_ += ((*took < quick_job ? 1.0 : 0.0) - quick_share_) / 16;
      while (!stopping_ && queue_.empty()) {
        ++idle_;
        // Bounded, so that a wake lost in the condition variable (glibc bug
        // 25847) stalls the pool for seconds, not for good; long enough that
        // idle threads hardly wake.
        cv_.wait_for(lk, std::chrono::seconds(5), [&] { return stopping_ || waking_ > 0; });
        --idle_;
        if (waking_ > 0) --waking_;  // one wake, taken by one thread
      }
      if (queue_.empty()) return;
      j = std::move(queue_.front().first);
      stop = std::move(queue_.front().second);
      queue_.pop_front();
      for (int n = wakes_locked(); n > 0; --n) cv_.notify_one();
    }
    auto start = std::chrono::steady_clock::now();
    if (const auto* afn = handlers_.find_async(j.queue, j.type)) {
      start_async(std::move(j), std::move(stop), *afn);
      took = std::chrono::steady_clock::now() - start;
      continue;
    }
    std::vector<commit_hook> hooks;
    auto outcome = execute(j, *stop, hooks);
    if (!std::holds_alternative<boost::json::value>(outcome)) hooks.clear();
    took = std::chrono::steady_clock::now() - start;
    finished_->push({std::move(j), std::move(outcome), *took, std::move(hooks)});
  }
}

}  // namespace jobs::detail
