#pragma once
// How jobsctl shows the API's answers to people. Pure functions of the JSON
// (unit-tested); the `--json` output is the API's own body instead.

#include "api/cli/client.hpp"
#include "api/cli/table.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>

namespace jobs::cli {

/// One line (or two, with a hint) saying why the API refused: the problem's
/// title, status and code, detail, the pointer or parameter at fault,
/// Retry-After; for a body that is not a problem, the status and the start
/// of the body.
std::string describe_problem(const http_reply& reply);

/// A member as display text: strings printable() (as they are but for
/// control characters), null or absent as "",
/// other JSON compact.
std::string text(const boost::json::object& o, std::string_view key);

/// `GET /v1/jobs/{id}`: fields, payload, result and the attempts table.
std::string format_job(const boost::json::object& job);

/// `GET /v1/jobs`: the jobs table.
std::string format_job_list(const boost::json::array& jobs);

/// `GET /v1/queues` (an array, or an object with `queues`).
std::string format_queues(const boost::json::value& answer);

/// `GET /v1/keys` or one key.
std::string format_keys(const boost::json::array& keys);

}  // namespace jobs::cli
