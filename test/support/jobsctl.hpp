#pragma once
// Runs the jobsctl binary as a user would, for the CLI's end-to-end tests:
// its arguments, environment and stdin given, its exit status, stdout and
// stderr returned.

#include <map>
#include <string>
#include <vector>

namespace jobs::test {

struct cli_result {
  int status = -1;  ///< the exit status; -1 if it did not exit normally
  std::string out;
  std::string err;
};

struct jobsctl {
  std::string url;  ///< passed as JOBS_URL unless empty
  std::string key;  ///< passed as JOBS_API_KEY unless empty
  std::string dir;  ///< where stdin/stdout/stderr files go

  /// Runs `jobsctl ARGS` with `stdin_text`, no other JOBS_URL/JOBS_API_KEY*
  /// than the ones here and `env`; killed after 60 s.
  cli_result operator()(const std::vector<std::string>& args, const std::string& stdin_text = {},
                        const std::map<std::string, std::string>& env = {}) const;
};

}  // namespace jobs::test
