#include "api/key_request.hpp"

#include "api/submission.hpp"
#include "common/text.hpp"

#include <boost/json/parse.hpp>

namespace jobs {

std::variant<key_request, problem> parse_key_request(std::string_view body, sys_time now) {
  if (body.empty()) return key_request{};
  if (auto p = check_json(body, {.max_depth = 4, .max_string = 1024, .max_array = 16})) return *p;
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 4;
  auto doc = boost::json::parse(body, ec, {}, opts);
  if (ec) return make_problem(400, "invalid_json", ec.message());
  auto* obj = doc.if_object();
  if (!obj) return make_problem(400, "invalid_request", "the body must be a JSON object");
  key_request k;
  for (const auto& kv : *obj) {
    std::string_view name = kv.key();
    const auto& v = kv.value();
    if (name == "name") {
      if (!v.is_string() || v.as_string().size() > 100)
        return make_problem(400, "invalid_field",
                            "name must be a string of at most 100 bytes (UTF-8)", "/name");
      // Stored as text: a NUL would cut it short.
      if (!is_storable_text(v.as_string()))
        return make_problem(400, "invalid_field", "name must not hold U+0000 (NUL)", "/name");
      k.name = v.as_string();
    } else if (name == "role") {
      if (!v.is_string() ||
          (v.as_string() != "admin" && v.as_string() != "submitter" && v.as_string() != "viewer"))
        return make_problem(400, "invalid_field", "role must be admin, submitter or viewer",
                            "/role");
      k.role = v.as_string();
    } else if (name == "expires_at") {
      auto t = v.is_string() ? parse_rfc3339(v.as_string()) : std::nullopt;
      if (!t)
        return make_problem(400, "invalid_field",
                            "expires_at must be an RFC 3339 date-time between 1970 and 2262, "
                            "e.g. 2027-01-01T00:00:00Z",
                            "/expires_at");
      if (*t <= now)
        return make_problem(400, "invalid_field", "expires_at must be in the future",
                            "/expires_at");
      k.expires_at = format_rfc3339(*t);
    } else {
      return make_problem(400, "unknown_field",
                          "a key takes name, role and expires_at, not " + std::string(name),
                          "/" + json_pointer_escape(name));
    }
  }
  return k;
}

}  // namespace jobs
