#include "api/webhook_endpoints.hpp"

#include "api/json_guard.hpp"
#include "api/submission.hpp"
#include "common/webhook_signature.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace jobs {

namespace {
constexpr std::size_t max_schedule = 20;
constexpr long max_gap_ms = 7L * 24 * 3600 * 1000;  // a week

// The endpoint as the API shows it: never its secrets.
constexpr const char* endpoint_json_sql =
    "json_build_object('name', name, 'secret_count', cardinality(secrets), "
    "  'retry_schedule_ms', retry_schedule_ms, "
    "  'state', CASE WHEN paused_until > now() THEN 'paused' "
    "    WHEN trial_until > now() THEN 'trial' ELSE 'active' END, "
    "  'consecutive_failures', consecutive_failures, "
    "  'paused_until', paused_until, "
    "  'trial_until', CASE WHEN trial_until > now() THEN trial_until END, "
    "  'created_at', created_at, 'updated_at', updated_at)";

// PostgreSQL's JSON text has spaces around ':'; clients get it compact.
std::string compact(const pqxx::field& f) {
  return boost::json::serialize(boost::json::parse(f.c_str()));
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& s : items)
    out += (out.size() > 1 ? "," : "") + s;  // whsec_ + base64: no quoting
  return out + "}";
}
}  // namespace

bool is_endpoint_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

std::variant<webhook_endpoint_spec, problem> parse_webhook_endpoint(std::string_view body) {
  if (auto p = check_json(body, {.max_depth = 4, .max_string = 4096, .max_array = 64})) return *p;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return make_problem(400, "invalid_json", "the body is not JSON");
  if (!v.is_object()) return make_problem(400, "invalid_request", "the body must be a JSON object");
  webhook_endpoint_spec spec;
  const auto& o = v.get_object();
  for (const auto& [k, val] : o)
    if (k != "secrets" && k != "retry_schedule_ms")
      return make_problem(400, "unknown_field", "unknown member " + std::string(k),
                          "/" + json_pointer_escape(k));
  const auto* secrets = o.if_contains("secrets");
  if (!secrets) return make_problem(400, "missing_field", "secrets is required", "/secrets");
  if (!secrets->is_array() || secrets->get_array().empty() || secrets->get_array().size() > 2)
    return make_problem(400, "invalid_field",
                        "secrets must be an array of one secret, or two during a rotation",
                        "/secrets");
  std::optional<std::string> first_key;
  for (std::size_t i = 0; i < secrets->get_array().size(); ++i) {
    const auto& s = secrets->get_array()[i];
    auto key = s.is_string() ? webhooks::decode_secret(s.get_string()) : std::nullopt;
    if (!key)
      return make_problem(400, "invalid_field",
                          "a secret is \"whsec_\" and the base64 of 24 to 64 random bytes",
                          fmt::format("/secrets/{}", i));
    // Two secrets are a rotation: the same key twice is a client's mistake.
    if (first_key && *first_key == *key)
      return make_problem(400, "invalid_field",
                          "the two secrets are the same key: a rotation sends the new secret "
                          "and the old one",
                          fmt::format("/secrets/{}", i));
    first_key = std::move(key);
    spec.secrets.emplace_back(s.get_string());
  }
  if (const auto* r = o.if_contains("retry_schedule_ms"); r && !r->is_null()) {
    if (!r->is_array() || r->get_array().empty() || r->get_array().size() > max_schedule)
      return make_problem(
          400, "invalid_field",
          fmt::format("retry_schedule_ms must be an array of 1 to {} gaps in ms", max_schedule),
          "/retry_schedule_ms");
    spec.retry_schedule_ms.emplace();
    for (std::size_t i = 0; i < r->get_array().size(); ++i) {
      const auto& g = r->get_array()[i];
      if (!g.is_int64() || g.get_int64() < 0 || g.get_int64() > max_gap_ms)
        return make_problem(400, "invalid_field",
                            fmt::format("a gap is an integer from 0 to {} ms", max_gap_ms),
                            fmt::format("/retry_schedule_ms/{}", i));
      spec.retry_schedule_ms->push_back(static_cast<long>(g.get_int64()));
    }
  }
  return spec;
}

std::pair<bool, std::string> put_webhook_endpoint(pqxx::work& w, const tenant_id& t,
                                                  const std::string& name,
                                                  const webhook_endpoint_spec& spec) {
  std::optional<std::string> schedule;
  if (spec.retry_schedule_ms) {
    schedule = "{";
    for (auto g : *spec.retry_schedule_ms)
      *schedule += (schedule->size() > 1 ? "," : "") + std::to_string(g);
    *schedule += "}";
  }
  auto r = w.exec_params(
      std::string(
          "INSERT INTO webhook_endpoints AS e (tenant_id, name, secrets, retry_schedule_ms) "
          "VALUES ($1, $2, $3::text[], $4::integer[]) "
          "ON CONFLICT (tenant_id, name) DO UPDATE SET secrets = excluded.secrets, "
          "  retry_schedule_ms = excluded.retry_schedule_ms, updated_at = now() "
          "RETURNING (xmax = 0), ") +
          endpoint_json_sql,
      t.value, name, text_array(spec.secrets),
      schedule ? schedule->c_str() : static_cast<const char*>(nullptr));
  return {r[0][0].as<bool>(), compact(r[0][1])};
}

std::optional<std::string> find_webhook_endpoint_json(pqxx::connection& c, const tenant_id& t,
                                                      const std::string& name) {
  pqxx::nontransaction n(c);
  auto r = n.exec_params(std::string("SELECT ") + endpoint_json_sql +
                             " FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2",
                         t.value, name);
  if (r.empty()) return std::nullopt;
  return compact(r[0][0]);
}

std::string list_webhook_endpoints_json(pqxx::connection& c, const tenant_id& t) {
  pqxx::nontransaction n(c);
  auto r = n.exec_params(std::string("SELECT json_build_object('endpoints', coalesce(json_agg(") +
                             endpoint_json_sql +
                             " ORDER BY name), '[]'::json)) FROM webhook_endpoints "
                             "WHERE tenant_id = $1",
                         t.value);
  return compact(r[0][0]);
}

std::optional<std::string> delete_webhook_endpoint(pqxx::connection& c, const tenant_id& t,
                                                   const std::string& name) {
  pqxx::work w(c);
  auto r = w.exec_params(std::string("DELETE FROM webhook_endpoints e WHERE tenant_id = $1 AND "
                                     "name = $2 RETURNING ") +
                             endpoint_json_sql,
                         t.value, name);
  w.commit();
  if (r.empty()) return std::nullopt;
  return compact(r[0][0]);
}

}  // namespace jobs
