#include "api/cli/args.hpp"

#include "common/time.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <limits>

namespace jobs::cli {

std::optional<std::string> parsed_args::get(std::string_view name) const {
  auto it = options.find(std::string(name));
  if (it == options.end()) return std::nullopt;
  return it->second;
}

const std::vector<option_spec>& global_options() {
  static const std::vector<option_spec> options{
      {"url", 0, true, "URL", "the API (env JOBS_URL; default http://127.0.0.1:8780)"},
      {"key", 0, true, "KEY", "the API key (env JOBS_API_KEY)"},
      {"key-file", 0, true, "FILE", "read the API key from FILE (env JOBS_API_KEY_FILE)"},
      {"json", 0, false, {}, "print the API's JSON instead of tables"},
      {"http-timeout", 0, true, "DURATION", "deadline of each HTTP request (default 30s)"},
      {"ca-file", 0, true, "FILE", "PEM CAs to trust for https besides the system's"},
      {"help", 'h', false, {}, "show help"},
  };
  return options;
}

namespace {

const option_spec* find_option(const std::vector<option_spec>& specs, std::string_view name,
                               char short_name) {
  for (const auto& o : specs)
    if ((short_name == 0 && o.name == name) || (short_name != 0 && o.short_name == short_name))
      return &o;
  return nullptr;
}

const command_spec* find_command(const std::vector<command_spec>& commands, std::string_view name) {
  for (const auto& c : commands)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

std::vector<std::string_view> subcommands(const std::vector<command_spec>& commands,
                                          std::string_view group) {
  std::vector<std::string_view> out;
  for (const auto& c : commands)
    if (c.name.size() > group.size() && c.name.starts_with(group) && c.name[group.size()] == ' ')
      out.push_back(c.name.substr(group.size() + 1));
  return out;
}

namespace {

void parse_into(parsed_args& out, const std::vector<std::string>& args,
                const std::vector<command_spec>& commands) {
  std::string group;  // "keys" while its subcommand is awaited
  bool options_done = false;
  std::vector<std::string> words;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool is_option = !options_done && a.size() > 1 && a[0] == '-';
    if (!is_option) {
      words.push_back(a);
      if (out.command == nullptr) {
        if (!group.empty()) {
          out.command = find_command(commands, group + " " + a);
          if (out.command == nullptr)
            throw usage_error(fmt::format("unknown command '{} {}'", group, a));
          words.clear();
        } else if (!subcommands(commands, a).empty()) {
          group = a;
          words.clear();
        } else {
          out.command = find_command(commands, a);
          if (out.command == nullptr) throw usage_error(fmt::format("unknown command '{}'", a));
          words.clear();
        }
      }
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name, value;
    bool has_inline = false;
    const option_spec* spec = nullptr;
    if (a[1] == '-') {
      auto eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) value = a.substr(eq + 1), has_inline = true;
      spec = find_option(global_options(), name, 0);
      if (!spec && out.command) spec = find_option(out.command->options, name, 0);
    } else {
      if (a.size() != 2) throw usage_error(fmt::format("unknown option '{}'", a));
      spec = find_option(global_options(), {}, a[1]);
      if (!spec && out.command) spec = find_option(out.command->options, {}, a[1]);
    }
    if (spec == nullptr) {
      if (out.command)
        throw usage_error(fmt::format("unknown option '{}' for '{}'", a, out.command->name));
      throw usage_error(fmt::format("unknown option '{}'", a));
    }
    if (spec->takes_value && !has_inline) {
      if (i + 1 >= args.size()) throw usage_error(fmt::format("--{} needs a value", spec->name));
      value = args[++i];
    } else if (!spec->takes_value && has_inline) {
      throw usage_error(fmt::format("--{} takes no value", spec->name));
    }
    if (spec->name == "help") {
      out.help = true;
      continue;
    }
    out.options[std::string(spec->name)] = value;
  }
  if (out.command == nullptr && !group.empty()) {
    if (!out.help) {
      usage_error e(fmt::format("'{}' needs a subcommand: {}", group,
                                fmt::join(subcommands(commands, group), ", ")));
      e.command = group;
      throw e;
    }
    out.group = group;
  }
  out.positionals = std::move(words);
  if (out.command && !out.help) {
    const auto& c = *out.command;
    if (out.positionals.size() < c.min_args)
      throw usage_error(fmt::format("'{}' needs {}", c.name, c.args));
    if (out.positionals.size() > c.max_args)
      throw usage_error(fmt::format("'{}' takes {}; unexpected '{}'", c.name,
                                    c.args.empty() ? "no arguments" : c.args,
                                    out.positionals[c.max_args]));
  }
}

}  // namespace

parsed_args parse_args(const std::vector<std::string>& args,
                       const std::vector<command_spec>& commands) {
  parsed_args out;
  try {
    parse_into(out, args, commands);
  } catch (usage_error& e) {
    if (out.command) e.command = out.command->name;
    throw;
  }
  return out;
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view option) {
  long n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(p, text.data() + text.size() - p);
  long factor = unit == "ms"                  ? 1
                : unit.empty() || unit == "s" ? 1000
                : unit == "m"                 ? 60'000
                : unit == "h"                 ? 3'600'000
                : unit == "d"                 ? 86'400'000
                                              : 0;
  if (ec != std::errc{} || p == text.data() || n < 0 || factor == 0 ||
      n > std::numeric_limits<long>::max() / factor)
    throw usage_error(
        fmt::format("--{}: '{}' is not a duration (like 500ms, 30s, 5m, 2h, 1d)", option, text));
  return std::chrono::milliseconds(n * factor);
}

bool is_rfc3339(std::string_view t) { return parse_rfc3339(t).has_value(); }

std::string parse_time_or_ago(std::string_view text, std::string_view option,
                              std::chrono::system_clock::time_point now) {
  if (is_rfc3339(text)) return std::string(text);
  auto bad = [&] {
    return usage_error(fmt::format(
        "--{}: '{}' is not an RFC 3339 time (like 2026-12-01T09:00:00Z) or a duration ago "
        "(like 30m, 2h, 7d)",
        option, text));
  };
  std::chrono::milliseconds ago;
  try {
    ago = parse_duration(text, option);
  } catch (const usage_error&) {
    throw bad();
  }
  if (ago > std::chrono::hours(24 * 36525)) throw bad();
  auto at = std::chrono::floor<std::chrono::seconds>(now) -
            std::chrono::duration_cast<std::chrono::seconds>(ago);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", at);
}

long parse_integer(std::string_view text, std::string_view option, long lo, long hi) {
  long n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || p != text.data() + text.size() || n < lo || n > hi)
    throw usage_error(
        fmt::format("--{}: '{}' is not an integer from {} to {}", option, text, lo, hi));
  return n;
}

}  // namespace jobs::cli
