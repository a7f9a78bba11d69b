#include "api/job_filter.hpp"

#include "api/submission.hpp"
#include "common/text.hpp"
#include "common/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

namespace jobs {

namespace {
// Query parameters are named in `parameter`, not as a body pointer.
problem bad(std::string code, std::string detail, std::string_view param) {
  auto p = make_problem(400, std::move(code), std::move(detail));
  p.parameter = param;
  return p;
}
}  // namespace

std::variant<job_filter, problem> parse_job_filter(boost::urls::params_view params, bool paging,
                                                   int limit_max,
                                                   std::initializer_list<std::string_view> extra) {
  job_filter f;
  // (A repeated parameter was refused before: router.cpp, refused_input.)
  for (auto p : params) {
    // PostgreSQL's text stops at a NUL ("a\0" would filter as "a") and refuses
    // malformed UTF-8 (the query would fail as if the database were down).
    if (!is_storable_text(p.value))
      return bad("invalid_field", p.key + " must be valid UTF-8 without NUL", p.key);
    if (p.key == "queue") {
      if (!is_known_queue(p.value))
        return bad("unknown_queue", "queue must be one of email, processing, webhooks", "queue");
      f.queue = p.value;
    } else if (p.key == "state") {
      if (!parse_job_state(p.value))
        return bad("invalid_field", "state must be a job state", "state");
      f.state = p.value;
    } else if (p.key == "type") {
      if (p.value.empty() || p.value.size() > job_limits::max_type_length)
        return bad("invalid_field", "type must be a job type", "type");
      f.type = p.value;
    } else if (p.key == "created_after" || p.key == "created_before") {
      auto t = parse_rfc3339(p.value);
      if (!t)
        return bad("invalid_field",
                   p.key +
                       " must be an RFC 3339 date-time between 1970 and 2262, "
                       "e.g. 2026-11-22T10:00:00Z (in a URL, an offset's + as %2B)",
                   p.key);
      // Its instant, in the form PostgreSQL reads whatever the text's length.
      (p.key == "created_after" ? f.created_after : f.created_before) = format_rfc3339_us(*t);
    } else if (p.key == "q") {
      // Empty, it would match every job: a bulk action given an empty
      // search by mistake would take the whole tenant.
      if (p.value.empty() || p.value.size() > max_filter_text)
        return bad("invalid_field", fmt::format("q must be 1 to {} bytes", max_filter_text), "q");
      f.text = p.value;
    } else if (paging && p.key == "cursor") {
      if (!is_uuid(p.value)) return bad("invalid_field", "cursor is not valid", "cursor");
      f.before = p.value;
    } else if (paging && p.key == "limit") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(p.value.data(), p.value.data() + p.value.size(), n);
      if (ec != std::errc{} || ptr != p.value.data() + p.value.size() || n < 1 || n > limit_max)
        return bad("invalid_field", fmt::format("limit must be an integer from 1 to {}", limit_max),
                   "limit");
      f.limit = n;
    } else if (std::find(extra.begin(), extra.end(), p.key) == extra.end()) {
      return bad("unknown_field", "unknown query parameter " + p.key, p.key);
    }
  }
  return f;
}

}  // namespace jobs
