#pragma once
// jobsctl's commands: their specs (options and help) and their handlers.
// A handler makes its REST calls through `call`, prints to `out`, and
// returns an exit status (cli.hpp); an API refusal throws api_error.

#include "api/cli/args.hpp"
#include "api/cli/client.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <iosfwd>
#include <stdexcept>
#include <string>

namespace jobs::cli {

/// A non-2xx answer, described from its problem+json (exit status 1).
struct api_error : std::runtime_error {
  api_error(const std::string& what, int status) : std::runtime_error(what), status(status) {}
  int status;  ///< the HTTP status
};

struct context {
  const parsed_args& args;
  const api_client& client;
  bool json = false;  ///< --json: print the API's JSON
  std::ostream& out;
  std::ostream& err;
};

struct api_answer {
  http_reply reply;
  boost::json::value json;  ///< the parsed body (null when empty)
};

/// One REST call; a status outside 200..299 throws api_error, a 2xx body
/// that is not JSON throws connection_error.
api_answer call(const context& c, std::string_view method, const std::string& target,
                const std::string& body = {},
                const std::map<std::string, std::string>& headers = {});

/// Prints the body as the API sent it, on one line.
void print_raw(const context& c, const api_answer& a);

/// Percent-encodes a path segment or query value.
std::string url_encode(std::string_view text);

/// Every command, in help order.
const std::vector<command_spec>& command_specs();

int cmd_submit(const context& c);
int cmd_get(const context& c);
int cmd_list(const context& c);
int cmd_cancel(const context& c);
int cmd_retry(const context& c);
int cmd_watch(const context& c);
int cmd_queues(const context& c);
int cmd_pause(const context& c);  ///< pause and resume
int cmd_bulk(const context& c);   ///< bulk cancel, retry and requeue
int cmd_keys_create(const context& c);
int cmd_keys_list(const context& c);
int cmd_keys_revoke(const context& c);

/// How watch and submit --wait poll: --interval (500ms by default, at least
/// 100ms) and --timeout (none by default; when given, more than 0). Throws
/// usage_error for a bad value: submit --wait reads it before it submits.
struct follow_pace {
  std::chrono::milliseconds interval{500};
  std::chrono::milliseconds timeout{0};  ///< 0: no limit
};
follow_pace parse_follow_pace(const parsed_args& a);

/// Follows job `id` until it is final (watch, submit --wait): prints each
/// state it sees; returns 0 succeeded, 4 dead or cancelled, 5 timed out.
/// Rides out an API that does not answer, or answers 429 or 503, for up to
/// `max_outage` at a time (an API restarting), saying so on stderr.
int follow_job(const context& c, const std::string& id, follow_pace pace,
               std::chrono::milliseconds max_outage = std::chrono::seconds(30));

}  // namespace jobs::cli
