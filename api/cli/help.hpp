#pragma once
// jobsctl's help texts, made from the command specs.

#include "api/cli/args.hpp"

#include <string>

namespace jobs::cli {

/// `jobsctl --help`: commands, global options, environment, exit statuses.
std::string general_help();

/// `jobsctl GROUP --help` (keys, bulk): its subcommands.
std::string group_help(std::string_view group);

/// `jobsctl COMMAND --help`.
std::string command_help(const command_spec& c);

}  // namespace jobs::cli
