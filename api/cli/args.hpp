#pragma once
// Command-line parsing for jobsctl, pure (unit-tested without a server).
//
// A command line is `[global options] COMMAND [SUBCOMMAND] [options] [ARGS]`;
// options may come anywhere after the program name, as `--name value`,
// `--name=value` or a short `-x value`; `--` ends the options and `-` is an
// argument (stdin). Each command lists the options it takes (commands.hpp);
// the global ones are taken everywhere. Anything else throws usage_error.

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::cli {

/// Bad arguments: exit status 2, with the message and a pointer to --help.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
  std::string command;  ///< the command whose arguments were bad, when known
};

struct option_spec {
  std::string_view name;    ///< long name without the dashes
  char short_name = 0;      ///< 0: none
  bool takes_value = true;  ///< false: a flag
  std::string_view value_name = {};
  std::string_view help = {};
};

struct command_spec {
  std::string_view name;  ///< "get", "keys create"
  std::string_view args;  ///< positional arguments, for the synopsis: "ID"
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  std::string_view summary;
  std::vector<option_spec> options;
};

struct parsed_args {
  const command_spec* command = nullptr;  ///< null: no command given
  std::string group;                      ///< "keys" given without its subcommand (with --help)
  std::vector<std::string> positionals;
  std::map<std::string, std::string> options;  ///< long name -> value ("" for a flag)
  bool help = false;                           ///< -h or --help anywhere

  bool has(std::string_view name) const { return options.contains(std::string(name)); }
  std::optional<std::string> get(std::string_view name) const;
};

/// The options every command takes (--url, --key, --json, ...).
const std::vector<option_spec>& global_options();

/// The subcommands of a group ("keys": create, list, revoke), in spec order.
std::vector<std::string_view> subcommands(const std::vector<command_spec>& commands,
                                          std::string_view group);

/// Parses `args` against `commands`. With --help, positional checks are
/// skipped and an unknown command is still an error.
parsed_args parse_args(const std::vector<std::string>& args,
                       const std::vector<command_spec>& commands);

/// "1500ms", "30s", "5m", "2h", "1d"; a bare number is seconds.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view option);

/// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), a real time the API
/// takes (common/time.hpp, parse_rfc3339): 2026-02-30 is not one.
bool is_rfc3339(std::string_view text);

/// A time filter: an RFC 3339 time as given, or a duration ("2h", "7d")
/// meaning that long before `now`, as RFC 3339 UTC. Anything else (or a
/// duration over 100 years) is a usage_error.
std::string parse_time_or_ago(std::string_view text, std::string_view option,
                              std::chrono::system_clock::time_point now);

/// A whole number in [lo, hi].
long parse_integer(std::string_view text, std::string_view option, long lo, long hi);

}  // namespace jobs::cli
