#pragma once
// The job filter of GET /v1/jobs and the admin's bulk actions, from query
// parameters:
//
//   queue            email | processing | webhooks
//   state            a job state (common/job.hpp)
//   type             the job type, exactly ("noop", "csv.aggregate", ...)
//   created_after    RFC 3339, inclusive
//   created_before   RFC 3339, exclusive
//   q                a job id or its first 8 characters or more, or text found (any
//                    case) in the payload or the last error
//   cursor, limit    paging (GET /v1/jobs only; limit from 1 to `limit_max`)
//
// Bad values are 400 invalid_field / unknown_queue, unknown parameters 400
// unknown_field, each naming the parameter. `extra` lists more parameter
// names the caller reads itself (they are skipped here).
// Thread-safety: a pure function.

#include "api/submission.hpp"
#include "common/store.hpp"

#include <boost/url/params_view.hpp>

#include <initializer_list>
#include <string_view>
#include <variant>

namespace jobs {

inline constexpr std::size_t max_filter_text = 256;

std::variant<job_filter, problem> parse_job_filter(boost::urls::params_view params, bool paging,
                                                   int limit_max,
                                                   std::initializer_list<std::string_view> extra);

}  // namespace jobs
