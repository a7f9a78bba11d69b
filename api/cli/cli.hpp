#pragma once
// jobsctl: the platform's command line. Each command is one or a few REST
// calls (the OpenAPI document in schemas/ is the contract); the output is an
// aligned table or a key/value listing for people, or with `--json` the
// API's JSON as it came (one document per line) for scripts.
//
// Settings, each a flag or else an environment variable:
//
// | flag              | variable            | default                 |
// |-------------------|---------------------|-------------------------|
// | `--url`           | `JOBS_URL`          | `http://127.0.0.1:8780` |
// | `--key`           | `JOBS_API_KEY`      | none (required)         |
// | `--key-file`      | `JOBS_API_KEY_FILE` | none                    |
// | `--http-timeout`  |                     | 30s per request         |
// | `--ca-file`       |                     | the system's CAs only   |
//
// An `https` URL is verified (certificate and host name, TLS 1.2 at least).
//
// Exit status (exit_code): 0 done; 1 the API refused (a problem response);
// 2 usage (bad arguments, no key); 3 no answer (connect, TLS, timeout, a
// reply that is not HTTP); 4 `watch`: the job ended `dead` or `cancelled`;
// 5 `watch`: still not final when `--timeout` passed.
//
// Thread-safety: run() is for main(); it reads the environment and writes
// stdout/stderr.

#include <string>
#include <vector>

namespace jobs::cli {

enum exit_code : int {
  exit_ok = 0,
  exit_api_error = 1,
  exit_usage = 2,
  exit_connection = 3,
  exit_job_not_succeeded = 4,
  exit_watch_timeout = 5,
};

/// Runs one command line (argv without the program name).
int run(const std::vector<std::string>& args);

}  // namespace jobs::cli
