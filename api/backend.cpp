#include "api/backend.hpp"

namespace jobs {

boost::asio::awaitable<std::vector<submit_result>> api_backend::submit_many(
    const std::vector<new_job>& jobs) {
  std::vector<submit_result> results;
  results.reserve(jobs.size());
  for (const auto& job : jobs) {
    auto r = co_await submit(job);
    results.push_back(std::move(r));
  }
  co_return results;
}

boost::asio::awaitable<void> api_backend::refresh_metrics(api_metrics&) { co_return; }

}  // namespace jobs
