#include "api/cli/args.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

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

bool is_group(const std::vector<command_spec>& commands, std::string_view word) {
  return std::any_of(commands.begin(), commands.end(), [&](const command_spec& c) {
    return c.name.size() > word.size() && c.name.starts_with(word) && c.name[word.size()] == ' ';
  });
}

}  // namespace

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
        } else if (is_group(commands, a)) {
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
  if (out.command == nullptr && !group.empty() && !out.help)
    throw usage_error(fmt::format("'{}' needs a subcommand", group));
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

bool looks_like_rfc3339(std::string_view t) {
  auto digits = [&](std::size_t at, std::size_t n) {
    if (t.size() < at + n) return false;
    return std::all_of(t.begin() + at, t.begin() + at + n,
                       [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  if (!(digits(0, 4) && t.size() >= 19 && t[4] == '-' && digits(5, 2) && t[7] == '-' &&
        digits(8, 2) && (t[10] == 'T' || t[10] == 't') && digits(11, 2) && t[13] == ':' &&
        digits(14, 2) && t[16] == ':' && digits(17, 2)))
    return false;
  std::size_t i = 19;
  if (i < t.size() && t[i] == '.') {
    std::size_t start = ++i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) return i + 1 == t.size();
  if (i < t.size() && (t[i] == '+' || t[i] == '-'))
    return i + 6 == t.size() && digits(i + 1, 2) && t[i + 3] == ':' && digits(i + 4, 2);
  return false;
}

std::string parse_time_or_ago(std::string_view text, std::string_view option,
                              std::chrono::system_clock::time_point now) {
  if (looks_like_rfc3339(text)) return std::string(text);
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
