#include "api/submission.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>

namespace jobs {

namespace {

const std::map<std::string, std::string, std::less<>>& titles() {
  static const std::map<std::string, std::string, std::less<>> t{
      {"invalid_json", "Request body is not valid JSON"},
      {"json_too_deep", "Request body is nested too deeply"},
      {"invalid_request", "Request body must be a JSON object"},
      {"missing_field", "A required field is missing"},
      {"invalid_field", "A field has an invalid value"},
      {"unknown_field", "Unknown field"},
      {"unknown_queue", "Unknown queue"},
      {"unknown_job_type", "Unknown job type"},
      {"payload_invalid", "Payload does not match the job type's schema"},
      {"unauthorized", "Missing or invalid API key"},
      {"forbidden", "The API key's role does not allow this"},
      {"not_found", "Not found"},
      {"method_not_allowed", "Method not allowed"},
      {"unsupported_media_type", "Content-Type must be application/json"},
      {"body_too_large", "Request body is too large"},
      {"header_too_large", "Request headers are too large"},
      {"bad_request", "Malformed HTTP request"},
      {"unavailable", "Service temporarily unavailable"},
      {"internal", "Internal error"},
  };
  return t;
}

}  // namespace

problem make_problem(int status, std::string code, std::string detail, std::string pointer) {
  auto it = titles().find(code);
  return problem{status, std::move(code), it == titles().end() ? "Error" : it->second,
                 std::move(detail), std::move(pointer)};
}

std::variant<new_job, problem> parse_submission(std::string_view body,
                                                const schema_registry& schemas,
                                                const submission_limits& limits, sys_time now) {
  boost::json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(limits.max_depth);
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec, {}, opts);
  if (ec == boost::json::error::too_deep)
    return make_problem(400, "json_too_deep",
                        fmt::format("nesting is limited to {} levels", limits.max_depth));
  if (ec) return make_problem(400, "invalid_json", ec.message());
  auto* obj = doc.if_object();
  if (!obj) return make_problem(400, "invalid_request", "the body must be a JSON object", "");

  static constexpr std::string_view known[] = {"queue",    "type",         "payload",
                                               "priority", "max_attempts", "run_at"};
  for (const auto& kv : *obj) {
    if (std::find(std::begin(known), std::end(known), kv.key()) == std::end(known))
      return make_problem(
          400, "unknown_field",
          fmt::format("field {:?} is not part of a job submission", std::string_view(kv.key())),
          "/" + json_pointer_escape(kv.key()));
  }

  new_job job;
  auto* queue = obj->if_contains("queue");
  if (!queue) return make_problem(400, "missing_field", "queue is required", "/queue");
  if (!queue->is_string())
    return make_problem(400, "invalid_field", "queue must be a string", "/queue");
  job.queue = queue->as_string();
  if (!is_known_queue(job.queue))
    return make_problem(400, "unknown_queue", "queue must be one of email, processing, webhooks",
                        "/queue");

  auto* type = obj->if_contains("type");
  if (!type) return make_problem(400, "missing_field", "type is required", "/type");
  if (!type->is_string() || type->as_string().empty() ||
      type->as_string().size() > job_limits::max_type_length)
    return make_problem(400, "invalid_field",
                        fmt::format("type must be a non-empty string of at most {} characters",
                                    job_limits::max_type_length),
                        "/type");
  job.type = type->as_string();

  auto* payload = obj->if_contains("payload");
  if (!payload) return make_problem(400, "missing_field", "payload is required", "/payload");
  if (auto p = schemas.validate(job.queue, job.type, *payload)) return *p;
  job.payload_json = boost::json::serialize(*payload);

  auto int_field = [&](const char* name, int lo, int hi, int& out) -> std::optional<problem> {
    auto* v = obj->if_contains(name);
    if (!v) return std::nullopt;
    auto n = v->to_number<std::int64_t>(ec);
    if (ec || n < lo || n > hi)
      return make_problem(400, "invalid_field",
                          fmt::format("{} must be an integer from {} to {}", name, lo, hi),
                          std::string("/") + name);
    out = static_cast<int>(n);
    return std::nullopt;
  };
  if (auto p =
          int_field("priority", job_limits::min_priority, job_limits::max_priority, job.priority))
    return *p;
  if (auto p = int_field("max_attempts", 1, job_limits::max_max_attempts, job.max_attempts))
    return *p;

  if (auto* run_at = obj->if_contains("run_at"); run_at && !run_at->is_null()) {
    auto t = run_at->is_string() ? parse_rfc3339(run_at->as_string()) : std::nullopt;
    if (!t)
      return make_problem(
          400, "invalid_field",
          "run_at must be an RFC 3339 date-time between 1970 and 2262, e.g. 2026-11-22T10:00:00Z",
          "/run_at");
    if (*t > now) {
      job.state = job_state::scheduled;
      job.run_at = format_rfc3339(*t);
    }
  }
  return job;
}

}  // namespace jobs
