#include "common/keys.hpp"

#include "common/store.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <stdexcept>

namespace jobs {

namespace {

constexpr const char* authenticate_sql = R"(
  SELECT tenant_id, role, extract(epoch FROM expires_at - now())::float8 FROM api_keys
  WHERE key_hash = decode($1, 'hex') AND revoked_at IS NULL
    AND (expires_at IS NULL OR expires_at > now()))";

constexpr const char* create_tenant_sql =
    "INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";

constexpr const char* create_key_sql = R"(
  INSERT INTO api_keys (key_hash, prefix, tenant_id, name, role, expires_at)
  VALUES (decode($1, 'hex'), $2, $3, $4, $5, NULLIF($6, '')::timestamptz)
  RETURNING id)";

// How a key is listed (never its hash).
constexpr const char* key_json_sql = R"(
  json_build_object('id', id::text, 'prefix', prefix, 'name', name, 'role', role,
    'created_at', created_at, 'expires_at', expires_at, 'revoked_at', revoked_at))";

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string hash_api_key(std::string_view api_key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(api_key.data(), api_key.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return hex(md, len);
}

bool well_formed_api_key(std::string_view api_key) {
  constexpr std::string_view prefix = "jk_";
  return api_key.size() == prefix.size() + 48 && api_key.starts_with(prefix) &&
         std::all_of(api_key.begin() + prefix.size(), api_key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<principal> authenticate_key(pqxx::connection& c, std::string_view api_key) {
  pqxx::read_transaction r(c);
  auto res = r.exec_params(authenticate_sql, hash_api_key(api_key));
  if (res.empty()) return std::nullopt;
  principal who{tenant_id{res[0][0].as<std::string>()}, res[0][1].as<std::string>()};
  if (!res[0][2].is_null()) who.expires_in_s = res[0][2].as<double>();
  return who;
}

namespace {

std::pair<std::string, long> insert_key(pqxx::connection& c, const tenant_id& t,
                                        const std::string& name, const std::string& role,
                                        const std::string& expires_at) {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  auto key = "jk_" + hex(raw, sizeof raw);
  pqxx::work w(c);
  w.exec_params(create_tenant_sql, t.value);
  auto id = w.exec_params1(create_key_sql, hash_api_key(key), key.substr(0, 10), t.value, name,
                           role, expires_at)[0]
                .as<long>();
  w.commit();
  return {key, id};
}

}  // namespace

std::string create_api_key(pqxx::connection& c, const tenant_id& t, const std::string& name,
                           const std::string& role, const std::string& expires_at) {
  return insert_key(c, t, name, role, expires_at).first;
}

std::string create_api_key_json(pqxx::connection& c, const tenant_id& t, const std::string& name,
                                const std::string& role, const std::string& expires_at) {
  auto [key, id] = insert_key(c, t, name, role, expires_at);
  pqxx::read_transaction r(c);
  return compact_json(r.exec_params1(std::string("SELECT (") + key_json_sql +
                                         "::jsonb || jsonb_build_object('key', $2::text))::text "
                                         "FROM api_keys WHERE id = $1",
                                     id, key)[0]
                          .as<std::string>());
}

std::string list_api_keys_json(pqxx::connection& c, const tenant_id& t) {
  pqxx::read_transaction r(c);
  return compact_json(
      r.exec_params1(std::string("SELECT json_build_object('keys', coalesce(json_agg(") +
                         key_json_sql +
                         " ORDER BY id DESC), '[]'::json))::text FROM api_keys "
                         "WHERE tenant_id = $1",
                     t.value)[0]
          .as<std::string>());
}

std::optional<std::string> revoke_api_key(pqxx::connection& c, const tenant_id& t,
                                          std::string_view id) {
  if (id.empty() || id.size() > 18 ||
      !std::all_of(id.begin(), id.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  pqxx::work w(c);
  // The tenant's usable admin keys, locked: a concurrent revoke waits here,
  // then no longer counts the key this one revoked. Refused when no other
  // lasts as long as this one (no expiry lasts longest).
  auto refused = w.exec_params1(
      "WITH a AS (SELECT id, coalesce(expires_at, 'infinity') AS until FROM api_keys "
      "WHERE tenant_id = $1 AND role = 'admin' AND revoked_at IS NULL "
      "AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE), "
      "target AS (SELECT until FROM a WHERE id = $2::bigint) "
      "SELECT EXISTS (SELECT FROM target) AND NOT EXISTS (SELECT FROM a, target "
      "WHERE a.id <> $2::bigint AND a.until >= target.until)",
      t.value, std::string(id));
  if (refused[0].as<bool>())
    throw last_admin_key("no other admin key of the tenant lasts as long as this one");
  auto r = w.exec_params(std::string("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                                     "WHERE id = $1::bigint AND tenant_id = $2 RETURNING ") +
                             key_json_sql + "::text",
                         std::string(id), t.value);
  if (r.empty()) return std::nullopt;
  // Every API process drops its cached key lookups when this commits.
  w.exec0(std::string("NOTIFY ") + keys_channel);
  w.commit();
  return compact_json(r[0][0].as<std::string>());
}

}  // namespace jobs
