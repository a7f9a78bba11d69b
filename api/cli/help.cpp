#include "api/cli/help.hpp"

#include "api/cli/commands.hpp"
#include "api/cli/table.hpp"

#include <fmt/format.h>

namespace jobs::cli {

namespace {

std::string options_text(const std::vector<option_spec>& options) {
  std::vector<row> rows;
  for (const auto& o : options) {
    auto name = o.short_name ? fmt::format("-{}, --{}", o.short_name, o.name)
                             : fmt::format("    --{}", o.name);
    if (o.takes_value) name += " " + std::string(o.value_name);
    rows.push_back({"  " + name, std::string(o.help)});
  }
  // format_table's first line is its header: none here.
  auto table = format_table({"", ""}, rows);
  return table.substr(table.find('\n') + 1);
}

// The commands whose name starts with `prefix` ("" for all, "keys " for a
// group's), one row each: name, arguments, summary.
std::string commands_text(std::string_view prefix) {
  std::vector<row> rows;
  for (const auto& c : command_specs())
    if (c.name.starts_with(prefix))
      rows.push_back({fmt::format("  {} {}", c.name, c.args), std::string(c.summary)});
  // format_table's first line is its header: none here.
  auto table = format_table({"", ""}, rows);
  return table.substr(table.find('\n') + 1);
}

}  // namespace

std::string general_help() {
  std::string out =
      "Usage: jobsctl [options] COMMAND [ARGS]\n"
      "\nThe job platform's command line: submit and follow jobs, list them, cancel\n"
      "and retry them (one or all matching a filter), see, pause and resume the\n"
      "queues, manage API keys.\n\nCommands:\n";
  out += commands_text("");
  out += "\nOptions (every command):\n" + options_text(global_options());
  out +=
      "\nEnvironment: JOBS_URL, JOBS_API_KEY, JOBS_API_KEY_FILE (flags win).\n"
      "DURATION: 500ms, 30s, 5m, 2h, 1d (a bare number is seconds).\n"
      "\nExit status: 0 done; 1 the API refused (its problem is printed); 2 bad\n"
      "arguments or no key; 3 no answer (connection, TLS, timeout); 4 watch/--wait:\n"
      "the job ended dead or cancelled; 5 watch/--wait: still running at --timeout.\n"
      "\n'jobsctl COMMAND --help' shows a command's options.\n";
  return out;
}

std::string group_help(std::string_view group) {
  auto out = fmt::format("Usage: jobsctl {} SUBCOMMAND [ARGS] [options]\n\nSubcommands:\n", group);
  out += commands_text(std::string(group) + " ");
  out += fmt::format("\n'jobsctl {} SUBCOMMAND --help' shows a subcommand's options.\n", group);
  return out;
}

std::string command_help(const command_spec& c) {
  auto out = fmt::format("Usage: jobsctl {}{}{} [options]\n\n{}.\n", c.name,
                         c.args.empty() ? "" : " ", c.args, c.summary);
  if (!c.options.empty()) out += "\nOptions:\n" + options_text(c.options);
  out += "\nOptions (every command):\n" + options_text(global_options());
  return out;
}

}  // namespace jobs::cli
