#include "api/cli/cli.hpp"

#include "api/cli/commands.hpp"
#include "api/cli/help.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace jobs::cli {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_key_file(const std::string& path, std::string_view from) {
  std::ifstream in(path);
  std::string key;
  if (!in || !std::getline(in, key))
    throw usage_error(fmt::format("{} '{}': cannot read it", from, path));
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) throw usage_error(fmt::format("{} '{}' is empty", from, path));
  return key;
}

// Flags first, then the environment.
client_options settings(const parsed_args& a) {
  client_options o;
  if (auto url = a.get("url").value_or(env("JOBS_URL")); !url.empty()) o.url = url;
  if (a.has("key") && a.has("key-file")) throw usage_error("give --key or --key-file, not both");
  if (auto k = a.get("key")) {
    o.key = *k;
  } else if (auto f = a.get("key-file")) {
    o.key = read_key_file(*f, "--key-file");
  } else if (auto k = env("JOBS_API_KEY"); !k.empty()) {
    o.key = k;
  } else if (auto f = env("JOBS_API_KEY_FILE"); !f.empty()) {
    o.key = read_key_file(f, "JOBS_API_KEY_FILE");
  }
  if (o.key.empty())
    throw usage_error(
        "no API key: pass --key KEY or --key-file FILE, or set JOBS_API_KEY or JOBS_API_KEY_FILE");
  if (auto t = a.get("http-timeout")) o.timeout = parse_duration(*t, "http-timeout");
  if (o.timeout.count() == 0) throw usage_error("--http-timeout must be more than 0");
  o.ca_file = a.get("ca-file").value_or("");
  return o;
}

using handler = int (*)(const context&);

handler handler_of(std::string_view name) {
  static const std::map<std::string_view, handler> handlers{
      {"submit", cmd_submit},       {"get", cmd_get},
      {"list", cmd_list},           {"watch", cmd_watch},
      {"cancel", cmd_cancel},       {"retry", cmd_retry},
      {"queues", cmd_queues},       {"keys create", cmd_keys_create},
      {"keys list", cmd_keys_list}, {"keys revoke", cmd_keys_revoke},
      {"pause", cmd_pause},         {"resume", cmd_pause},
      {"bulk cancel", cmd_bulk},    {"bulk retry", cmd_bulk},
      {"bulk requeue", cmd_bulk},
  };
  return handlers.at(name);
}

}  // namespace

int run(const std::vector<std::string>& argv) {
  parsed_args args;
  try {
    args = parse_args(argv, command_specs());
    if (args.help) {
      std::cout << (args.command          ? command_help(*args.command)
                    : !args.group.empty() ? group_help(args.group)
                                          : general_help());
      return exit_ok;
    }
    if (!args.command) {
      std::cerr << general_help();
      return exit_usage;
    }
    api_client client(settings(args));
    context c{args, client, args.has("json"), std::cout, std::cerr};
    return handler_of(args.command->name)(c);
  } catch (const usage_error& e) {
    std::cerr << "jobsctl: " << e.what() << "\n";
    auto command = args.command ? std::string(args.command->name) : e.command;
    if (!command.empty())
      std::cerr << fmt::format(
          "Run 'jobsctl {} --help' for its {}.\n", command,
          subcommands(command_specs(), command).empty() ? "options" : "subcommands");
    else
      std::cerr << "Run 'jobsctl --help' for the commands.\n";
    return exit_usage;
  } catch (const api_error& e) {
    std::cerr << "jobsctl: " << e.what() << "\n";
    return exit_api_error;
  } catch (const connection_error& e) {
    std::cerr << "jobsctl: " << e.what() << "\n";
    return exit_connection;
  } catch (const std::exception& e) {
    std::cerr << "jobsctl: unexpected answer: " << e.what() << "\n";
    return exit_api_error;
  }
}

}  // namespace jobs::cli
