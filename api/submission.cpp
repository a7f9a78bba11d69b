#include "api/submission.hpp"

#include "common/idempotency.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>

namespace jobs {

namespace {

// The JSON pointer of the first string or member name holding U+0000, which
// no header may carry and PostgreSQL's jsonb cannot store; schemas cannot
// catch it (valijson's regexes see C strings).
std::optional<std::string> find_nul(const boost::json::value& v, const std::string& at) {
  if (const auto* s = v.if_string()) {
    if (std::string_view(*s).find('\0') != std::string_view::npos) return at;
  } else if (const auto* a = v.if_array()) {
    for (std::size_t i = 0; i < a->size(); ++i)
      if (auto p = find_nul((*a)[i], at + "/" + std::to_string(i))) return p;
  } else if (const auto* o = v.if_object()) {
    for (const auto& [key, value] : *o) {
      auto here = at + "/" + json_pointer_escape(key);
      if (key.find('\0') != std::string_view::npos) return here;
      if (auto p = find_nul(value, here)) return p;
    }
  }
  return std::nullopt;
}

const std::map<std::string, std::string, std::less<>>& titles() {
  static const std::map<std::string, std::string, std::less<>> t{
      {"invalid_json", "Request body is not valid JSON"},
      {"json_too_deep", "Request body is nested too deeply"},
      {"invalid_utf8", "Request body is not valid UTF-8"},
      {"json_string_too_long", "A string in the request body is too long"},
      {"json_array_too_long", "An array in the request body is too long"},
      {"json_duplicate_key", "An object in the request body repeats a member"},
      {"json_number_out_of_range", "A number in the request body is out of range"},
      {"too_many_headers", "Too many request headers"},
      {"url_too_long", "Request URL is too long"},
      {"request_timeout", "The request did not arrive in time"},
      {"too_many_connections", "Too many connections from this client"},
      {"invalid_request", "Request body must be a JSON object"},
      {"missing_field", "A required field is missing"},
      {"invalid_field", "A field has an invalid value"},
      {"unknown_field", "Unknown field"},
      {"unexpected_body", "This request takes no body"},
      {"unknown_queue", "Unknown queue"},
      {"unknown_job_type", "Unknown job type"},
      {"payload_invalid", "Payload does not match the job type's schema"},
      {"unauthorized", "Missing or invalid API key"},
      {"forbidden", "The API key's role does not allow this"},
      {"operator_only", "Needs a key of an operator tenant"},
      {"not_retryable", "Only a dead or failed job can be retried"},
      {"last_admin_key", "The tenant's last admin key cannot be revoked"},
      {"not_found", "Not found"},
      {"not_cancellable", "The job is already finished and cannot be cancelled"},
      {"idempotency_key_reused", "The idempotency key was used for a different request"},
      {"batch_invalid", "Jobs in the batch are invalid; none was recorded"},
      {"rate_limited", "Too many requests"},
      {"batch_over_rate_burst", "The batch is larger than the rate limit lets one request be"},
      {"batch_incomplete", "Some jobs of the batch were not accepted"},
      {"method_not_allowed", "Method not allowed"},
      {"unsupported_media_type", "Content-Type must be application/json"},
      {"body_too_large", "Request body is too large"},
      {"header_too_large", "Request headers are too large"},
      {"expectation_failed", "The server cannot meet the request's Expect"},
      {"unsupported_transfer_coding", "Transfer coding not supported"},
      {"bad_request", "Malformed HTTP request"},
      {"unavailable", "Service temporarily unavailable"},
  };
  return t;
}

}  // namespace

problem make_problem(int status, std::string code, std::string detail, std::string pointer) {
  auto it = titles().find(code);
  return problem{status, std::move(code), it == titles().end() ? "Error" : it->second,
                 std::move(detail), std::move(pointer)};
}

std::variant<boost::json::object, problem> parse_json_object(std::string_view body,
                                                             const submission_limits& limits) {
  if (auto p = check_json(body, limits)) return std::move(*p);
  boost::json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(limits.max_depth);
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec, {}, opts);
  if (ec) return make_problem(400, "invalid_json", ec.message());
  auto* obj = doc.if_object();
  if (!obj) return make_problem(400, "invalid_request", "the body must be a JSON object");
  return std::move(*obj);
}

std::variant<new_job, problem> parse_submission(
    std::string_view body, const schema_registry& schemas, const submission_limits& limits,
    sys_time now, std::optional<std::string_view> idempotency_header) {
  auto doc = parse_json_object(body, limits);
  if (auto* p = std::get_if<problem>(&doc)) return std::move(*p);
  return parse_submission(std::get<boost::json::object>(doc), schemas, now, idempotency_header);
}

std::variant<new_job, problem> parse_submission(
    const boost::json::object& submission, const schema_registry& schemas, sys_time now,
    std::optional<std::string_view> idempotency_header) {
  const auto* obj = &submission;
  boost::system::error_code ec;
  static constexpr std::string_view known[] = {
      "queue",  "type",       "payload",         "priority", "max_attempts",
      "run_at", "timeout_ms", "idempotency_key", "delay_ms", "backoff"};
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
                        fmt::format("type must be a non-empty string of at most {} bytes",
                                    job_limits::max_type_length),
                        "/type");
  job.type = type->as_string();

  auto* payload = obj->if_contains("payload");
  if (!payload) return make_problem(400, "missing_field", "payload is required", "/payload");
  std::optional<boost::json::value> as_integers;  // 5.0 where the schema wants an integer
  if (auto p = schemas.validate(job.queue, job.type, *payload, &as_integers)) return *p;
  if (as_integers) payload = &*as_integers;
  if (auto at = find_nul(*payload, "/payload"))
    return make_problem(400, "payload_invalid",
                        "U+0000 (NUL) is not allowed in a payload string or member name", *at);
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
  if (auto p = int_field("timeout_ms", job_limits::min_timeout_ms, job_limits::max_timeout_ms,
                         job.timeout_ms))
    return *p;

  std::string asked_run_at;  // as asked, even if past: a retry later is the same request
  if (auto* run_at = obj->if_contains("run_at"); run_at && !run_at->is_null()) {
    auto t = run_at->is_string() ? parse_rfc3339(run_at->as_string()) : std::nullopt;
    if (!t)
      return make_problem(
          400, "invalid_field",
          "run_at must be an RFC 3339 date-time between 1970 and 2262, e.g. 2026-11-22T10:00:00Z",
          "/run_at");
    asked_run_at = format_rfc3339(*t);
    if (*t > now) {
      job.state = job_state::scheduled;
      job.run_at = asked_run_at;
    }
  }

  if (auto* delay = obj->if_contains("delay_ms")) {
    int ms = 0;
    if (auto p = int_field("delay_ms", 0, job_limits::max_delay_ms, ms)) return *p;
    if (!asked_run_at.empty())
      return make_problem(400, "invalid_field", "send run_at or delay_ms, not both", "/delay_ms");
    if (ms > 0) {
      job.state = job_state::scheduled;
      job.run_at = format_rfc3339(now + std::chrono::milliseconds(ms));
    }
    // A retried request asks for the same delay, not the same instant; no
    // delay is the request without one.
    if (ms > 0) asked_run_at = "+" + std::to_string(ms) + "ms";
    (void)delay;
  }

  if (auto* backoff = obj->if_contains("backoff")) {
    auto* b = backoff->if_object();
    if (!b) return make_problem(400, "invalid_field", "backoff must be an object", "/backoff");
    for (const auto& kv : *b) {
      std::string_view k = kv.key();
      std::string ptr = "/backoff/" + json_pointer_escape(k);
      if (k == "base_ms" || k == "cap_ms") {
        auto n = kv.value().to_number<std::int64_t>(ec);
        if (ec || n < 1 || n > job_limits::max_backoff_ms)
          return make_problem(400, "invalid_field",
                              fmt::format("backoff.{} must be an integer from 1 to {}", k,
                                          job_limits::max_backoff_ms),
                              ptr);
        (k == "base_ms" ? job.backoff_base_ms : job.backoff_cap_ms) = static_cast<int>(n);
      } else if (k == "jitter") {
        const auto* j = kv.value().if_string();
        if (!j || !is_backoff_jitter(*j))
          return make_problem(400, "invalid_field",
                              fmt::format("backoff.jitter must be {}", backoff_jitters_text), ptr);
        job.backoff_jitter = *j;
      } else {
        return make_problem(400, "unknown_field",
                            fmt::format("backoff takes base_ms, cap_ms and jitter, not {:?}", k),
                            ptr);
      }
    }
  }

  // Against the default of the one not sent too: a cap under the default
  // base would make every delay the cap, with no growth.
  if (job.backoff_base_ms > 0 || job.backoff_cap_ms > 0) {
    int base = job.backoff_base_ms > 0 ? job.backoff_base_ms : job_limits::default_backoff_base_ms;
    int cap = job.backoff_cap_ms > 0 ? job.backoff_cap_ms : job_limits::default_backoff_cap_ms;
    if (cap < base)
      return job.backoff_cap_ms == 0
                 ? make_problem(400, "invalid_field",
                                fmt::format("backoff.base_ms must not be larger than the cap, "
                                            "{} ms by default: send cap_ms too",
                                            cap),
                                "/backoff/base_ms")
             : job.backoff_base_ms == 0
                 ? make_problem(400, "invalid_field",
                                fmt::format("backoff.cap_ms must not be smaller than the base, "
                                            "{} ms by default: send base_ms too",
                                            base),
                                "/backoff/cap_ms")
                 : make_problem(400, "invalid_field",
                                "backoff.cap_ms must not be smaller than backoff.base_ms",
                                "/backoff/cap_ms");
  }

  constexpr const char* key_rule = "1 to 255 printable ASCII characters";
  if (auto* key = obj->if_contains("idempotency_key")) {
    if (!key->is_string() || !is_valid_idempotency_key(key->as_string()))
      return make_problem(400, "invalid_field", fmt::format("idempotency_key must be {}", key_rule),
                          "/idempotency_key");
    job.idempotency_key = key->as_string();
  }
  if (idempotency_header) {
    if (!is_valid_idempotency_key(*idempotency_header)) {
      auto p = make_problem(400, "invalid_field",
                            fmt::format("the Idempotency-Key header must be {}", key_rule));
      p.parameter = "Idempotency-Key";
      return p;
    }
    if (!job.idempotency_key.empty() && job.idempotency_key != *idempotency_header)
      return make_problem(400, "invalid_field",
                          "the Idempotency-Key header and idempotency_key differ; send one of "
                          "them, or the same key in both",
                          "/idempotency_key");
    job.idempotency_key = *idempotency_header;
  }
  if (!job.idempotency_key.empty()) job.request_hash = request_hash(job, *payload, asked_run_at);
  return job;
}

}  // namespace jobs
