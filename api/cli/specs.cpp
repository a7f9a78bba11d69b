// The commands' options and help texts (help.cpp prints them).
#include "api/cli/commands.hpp"

namespace jobs::cli {

const std::vector<command_spec>& command_specs() {
  static const option_spec interval{"interval", 0, true, "DURATION",
                                    "how often to ask for the job's state (default 500ms)"};
  // The filter of list and bulk (job_commands.cpp, filter_query), and more.
  auto filter_and = [](std::vector<option_spec> more) {
    std::vector<option_spec> o{
        {"queue", 0, true, "QUEUE", "only this queue (email, processing, webhooks)"},
        {"state", 0, true, "STATE", "only this state (scheduled, queued, running, ...)"},
        {"type", 0, true, "TYPE", "only this job type"},
        {"created-after", 0, true, "TIME",
         "created at or after this RFC 3339 time, or this long ago (2h, 7d)"},
        {"created-before", 0, true, "TIME",
         "created before this RFC 3339 time, or this long ago (2h, 7d)"},
        {"search", 0, true, "TEXT",
         "a job id or its first 8 characters or more (the jobs made in that stretch: "
         "dry-run a bulk action first), or text in the payload or the last error"},
    };
    o.insert(o.end(), more.begin(), more.end());
    return o;
  };
  static const auto bulk_options =
      filter_and({{"dry-run", 0, false, {}, "only count the jobs it would change"}});
  static const option_spec quiet{"quiet", 'q', false, {}, "print only the id (the key for keys)"};
  static const std::vector<command_spec> specs{
      {"submit",
       "QUEUE TYPE [FILE|-]",
       2,
       3,
       "submit a job; the payload is FILE, --payload, or stdin",
       {
           {"payload", 0, true, "JSON", "the payload inline instead of a file"},
           {"idempotency-key", 0, true, "KEY", "sent as Idempotency-Key: a retry makes no 2nd job"},
           {"priority", 0, true, "N", "-100..100 (default 0)"},
           {"max-attempts", 0, true, "N", "1..100 (default 5)"},
           {"run-at", 0, true, "TIME", "RFC 3339 time to run at (the job waits scheduled)"},
           {"delay", 0, true, "DURATION", "run this long from now (instead of --run-at)"},
           {"job-timeout", 0, true, "DURATION", "execution timeout of each attempt"},
           {"backoff-base", 0, true, "DURATION", "retry backoff base (default 1s)"},
           {"backoff-cap", 0, true, "DURATION", "retry backoff cap (default 1h)"},
           {"jitter", 0, true, "MODE", "retry backoff jitter: full (default), equal, none"},
           {"wait", 'w', false, {}, "then follow the job like `watch` (same exit status)"},
           interval,
           {"timeout", 0, true, "DURATION", "with --wait: give up after this long"},
           quiet,
       }},
      {"get", "ID", 1, 1, "show a job: state, attempts, payload, result, every attempt", {}},
      {"list", "", 0, 0, "list the tenant's jobs, newest first",
       filter_and({
           {"limit", 'n', true, "N", "jobs per page, 1..500 (default 50)"},
           {"cursor", 0, true, "CURSOR", "the page after this cursor (printed after a page)"},
           {"all", 0, false, {}, "follow the cursor through every page"},
       })},
      {"bulk cancel", "", 0, 0,
       "cancel every job matching the filter (admin keys; running ones are asked to stop)",
       bulk_options},
      {"bulk retry", "", 0, 0, "retry every dead or failed job matching the filter (admin keys)",
       bulk_options},
      {"bulk requeue", "", 0, 0,
       "publish again every queued job matching the filter, for a broker that lost their "
       "messages (admin keys)",
       bulk_options},
      {"watch",
       "ID",
       1,
       1,
       "follow a job until it is final, printing each state it reaches",
       {interval, {"timeout", 0, true, "DURATION", "give up after this long (exit status 5)"}}},
      {"cancel", "ID", 1, 1, "cancel a job (a running one is asked to stop)", {}},
      {"retry", "ID", 1, 1, "run a dead or failed job again", {}},
      {"queues", "", 0, 0, "per queue: depth, consumers, workers, throughput, oldest wait", {}},
      {"pause", "QUEUE", 1, 1, "pause a queue: no job of it starts until resumed (admin keys)", {}},
      {"resume", "QUEUE", 1, 1, "resume a paused queue (admin keys)", {}},
      {"keys create",
       "",
       0,
       0,
       "create an API key of the tenant (admin keys only); it is shown once",
       {
           {"name", 0, true, "NAME", "a name for the key"},
           {"role", 0, true, "ROLE", "admin, submitter (default) or viewer"},
           {"expires", 0, true, "TIME", "RFC 3339 time the key stops working"},
           {"expires-in", 0, true, "DURATION", "the key stops working this long from now"},
           quiet,
       }},
      {"keys list", "", 0, 0, "list the tenant's keys (never the keys themselves)", {}},
      {"keys revoke", "ID", 1, 1, "revoke a key at once, on every API process", {}},
  };
  return specs;
}

}  // namespace jobs::cli
