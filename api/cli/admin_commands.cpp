// queues, pause, resume and keys create|list|revoke.
#include "api/cli/commands.hpp"

#include "api/cli/output.hpp"
#include "common/job.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json/serialize.hpp>

#include <ostream>

namespace jobs::cli {

namespace json = boost::json;

int cmd_queues(const context& c) {
  auto a = call(c, "GET", "/v1/queues");
  if (c.json)
    print_raw(c, a);
  else
    c.out << format_queues(a.json);
  return 0;
}

int cmd_pause(const context& c) {
  const auto& queue = c.args.positionals[0];
  auto verb = c.args.command->name;  // pause or resume
  if (!is_known_queue(queue))
    throw usage_error(
        fmt::format("'{}' is not a queue ({})", queue, fmt::join(known_queues, ", ")));
  auto a = call(c, "POST", fmt::format("/v1/admin/queues/{}/{}", url_encode(queue), verb));
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  // `changed: false`: it already was (an older API says nothing: changed).
  bool changed = text(a.json.as_object(), "changed") != "false";
  if (verb == "pause")
    c.out << queue << (changed ? " paused\n" : " was already paused\n");
  else
    c.out << queue << (changed ? " resumed\n" : " was not paused\n");
  return 0;
}

int cmd_keys_create(const context& c) {
  const auto& args = c.args;
  json::object body;
  if (auto v = args.get("name")) body["name"] = *v;
  if (auto v = args.get("role")) body["role"] = *v;
  if (args.has("expires") && args.has("expires-in"))
    throw usage_error("give --expires or --expires-in, not both");
  if (auto v = args.get("expires")) body["expires_at"] = *v;
  if (auto v = args.get("expires-in")) {
    // In seconds: a long duration added to the nanosecond clock would wrap.
    auto at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
              std::chrono::duration_cast<std::chrono::seconds>(parse_duration(*v, "expires-in"));
    body["expires_at"] = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", at);
  }
  auto a = call(c, "POST", "/v1/keys", json::serialize(body));
  const auto& o = a.json.as_object();
  if (c.json) {
    print_raw(c, a);
  } else if (args.has("quiet")) {
    c.out << text(o, "key") << "\n";
  } else {
    c.out << format_fields({{"id", text(o, "id")},
                            {"name", text(o, "name")},
                            {"role", text(o, "role")},
                            {"prefix", text(o, "prefix")},
                            {"expires", text(o, "expires_at")},
                            {"key", text(o, "key")}});
    c.err << "The key is shown only this once: store it now.\n";
  }
  return 0;
}

int cmd_keys_list(const context& c) {
  auto a = call(c, "GET", "/v1/keys");
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  static const json::array none;
  auto* keys = a.json.as_object().if_contains("keys");
  c.out << format_keys(keys && keys->is_array() ? keys->get_array() : none);
  return 0;
}

int cmd_keys_revoke(const context& c) {
  const auto& id = c.args.positionals[0];
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(fmt::format("'{}' is not a key id (the number `keys list` shows)", id));
  auto a = call(c, "DELETE", "/v1/keys/" + id);
  if (c.json) {
    print_raw(c, a);
    return 0;
  }
  const auto& o = a.json.as_object();
  c.out << fmt::format("key {} ({}) revoked at {}\n", text(o, "id"), text(o, "prefix"),
                       text(o, "revoked_at"));
  return 0;
}

}  // namespace jobs::cli
