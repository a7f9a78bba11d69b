#include "common/keys.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pqxx/pqxx>

#include <stdexcept>

namespace jobs {

namespace {

constexpr const char* authenticate_sql = R"(
  SELECT tenant_id, role FROM api_keys
  WHERE key_hash = decode($1, 'hex') AND revoked_at IS NULL
    AND (expires_at IS NULL OR expires_at > now()))";

constexpr const char* create_tenant_sql =
    "INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";

constexpr const char* create_key_sql = R"(
  INSERT INTO api_keys (key_hash, prefix, tenant_id, name, role)
  VALUES (decode($1, 'hex'), $2, $3, $4, $5))";

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

std::optional<principal> authenticate_key(pqxx::connection& c, std::string_view api_key) {
  pqxx::read_transaction r(c);
  auto res = r.exec_params(authenticate_sql, hash_api_key(api_key));
  if (res.empty()) return std::nullopt;
  return principal{tenant_id{res[0][0].as<std::string>()}, res[0][1].as<std::string>()};
}

std::string create_api_key(pqxx::connection& c, const tenant_id& t, const std::string& name,
                           const std::string& role) {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  auto key = "jk_" + hex(raw, sizeof raw);
  pqxx::work w(c);
  w.exec_params(create_tenant_sql, t.value);
  w.exec_params(create_key_sql, hash_api_key(key), key.substr(0, 10), t.value, name, role);
  w.commit();
  return key;
}

}  // namespace jobs
