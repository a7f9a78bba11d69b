#include "api/batch.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include <unordered_map>

namespace jobs {

std::variant<std::vector<new_job>, problem> parse_batch(std::string_view body,
                                                        const schema_registry& schemas,
                                                        const submission_limits& limits,
                                                        const batch_limits& batch, sys_time now) {
  auto doc = parse_json_object(body, limits);
  if (auto* p = std::get_if<problem>(&doc)) return std::move(*p);
  const auto* obj = &std::get<boost::json::object>(doc);
  for (const auto& kv : *obj)
    if (kv.key() != "jobs")
      return make_problem(
          400, "unknown_field",
          fmt::format("a batch has one member, jobs; not {:?}", std::string_view(kv.key())),
          "/" + json_pointer_escape(kv.key()));
  auto* members = obj->if_contains("jobs");
  if (!members) return make_problem(400, "missing_field", "jobs is required", "/jobs");
  auto* list = members->if_array();
  auto max = static_cast<std::size_t>(batch.max_jobs);
  if (!list || list->empty() || list->size() > max)
    return make_problem(
        400, "invalid_field",
        fmt::format("jobs must be an array of 1 to {} job submissions", batch.max_jobs), "/jobs");

  std::vector<new_job> jobs;
  jobs.reserve(list->size());
  problem refused = make_problem(400, "batch_invalid", "");
  std::size_t invalid = 0;
  std::unordered_map<std::string_view, std::size_t> keys;  // idempotency key -> first member
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto prefix = fmt::format("/jobs/{}", i);
    auto add_error = [&](problem p) {
      if (++invalid > batch.max_errors) return;
      p.pointer = prefix + p.pointer;
      refused.errors.push_back(std::move(p));
    };
    const auto* member = (*list)[i].if_object();
    if (!member) {
      add_error(make_problem(400, "invalid_request", "each job must be a JSON object"));
      continue;
    }
    auto parsed = parse_submission(*member, schemas, now);
    if (auto* p = std::get_if<problem>(&parsed)) {
      add_error(std::move(*p));
      continue;
    }
    auto& job = jobs.emplace_back(std::move(std::get<new_job>(parsed)));
    if (job.idempotency_key.empty()) continue;
    auto [first, inserted] = keys.emplace((*member).at("idempotency_key").as_string(), i);
    if (!inserted)
      add_error(
          make_problem(400, "invalid_field",
                       fmt::format("idempotency_key repeats the key of /jobs/{}", first->second),
                       "/idempotency_key"));
  }
  if (invalid == 0) return jobs;
  refused.detail = fmt::format(
      "{} of {} jobs are invalid{}; nothing was recorded", invalid, list->size(),
      invalid > batch.max_errors ? fmt::format(" (the first {} are listed)", batch.max_errors)
                                 : "");
  return refused;
}

}  // namespace jobs
