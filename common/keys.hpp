#pragma once
// API keys: who a request is.
//
// A key is "jk_" + 48 hex characters (24 random bytes). It is shown once, when
// created; PostgreSQL keeps only its SHA-256 (api_keys.key_hash) and its
// first 10 characters (prefix) so people can tell keys apart. A key belongs
// to one tenant and has a role (admin, submitter, viewer); it may expire or
// be revoked.
//
// Functions take a caller-owned connection and throw pqxx errors.

#include "common/job.hpp"

#include <pqxx/connection>

#include <optional>
#include <string>
#include <string_view>

namespace jobs {

struct principal {
  tenant_id tenant;
  std::string role;
};

/// The tenant and role of a live (not revoked, not expired) key.
std::optional<principal> authenticate_key(pqxx::connection& c, std::string_view api_key);

/// Creates the tenant if new and a key for it; returns the key.
std::string create_api_key(pqxx::connection& c, const tenant_id& t, const std::string& name,
                           const std::string& role);

/// Hex SHA-256 of a key.
std::string hash_api_key(std::string_view api_key);

}  // namespace jobs
