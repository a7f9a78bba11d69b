#pragma once
// API keys: who a request is.
//
// A key is "jk_" + 48 hex characters (24 random bytes). It is shown once, when
// created; PostgreSQL keeps only its SHA-256 (api_keys.key_hash) and its
// first 10 characters (prefix) so people can tell keys apart. A key belongs
// to one tenant and has a role (admin, submitter, viewer); it may expire or
// be revoked.
//
// Revocation is immediate everywhere: revoke_api_key NOTIFYs `keys_channel`
// in its transaction, and every API process drops its cached lookups when
// told (api/key_listener.hpp).
//
// Functions take a caller-owned connection and throw pqxx errors.

#include "common/job.hpp"

#include <pqxx/connection>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jobs {

struct principal {
  tenant_id tenant;
  std::string role;
  /// Seconds until the key expires, when it does (so a cache keeps it no longer).
  std::optional<double> expires_in_s = std::nullopt;
};

/// The tenant and role of a live (not revoked, not expired) key.
std::optional<principal> authenticate_key(pqxx::connection& c, std::string_view api_key);

/// Creates the tenant if new and a key for it; returns the key.
/// `expires_at`: RFC 3339, or empty for a key that does not expire.
std::string create_api_key(pqxx::connection& c, const tenant_id& t, const std::string& name,
                           const std::string& role, const std::string& expires_at = {});

inline constexpr const char* keys_channel = "jobs_keys";

/// A new key and how it is listed: {id, key, prefix, name, role, created_at, expires_at}.
/// The key itself is in this answer only.
std::string create_api_key_json(pqxx::connection& c, const tenant_id& t, const std::string& name,
                                const std::string& role, const std::string& expires_at);

/// The tenant's keys, newest first, never the key itself:
/// {"keys": [{id, prefix, name, role, created_at, expires_at, revoked_at}]}.
std::string list_api_keys_json(pqxx::connection& c, const tenant_id& t);

/// Thrown by revoke_api_key for an admin key that no other outlasts.
struct last_admin_key : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Revokes the tenant's key `id` (a decimal id). The key as listed, or
/// nullopt when the tenant has no such key. Revoking twice keeps the first
/// time. Throws last_admin_key, revoking nothing, when `id` is a usable
/// admin key (neither revoked nor expired) and no other usable admin key of
/// the tenant lasts as long (none without expiry, or expiring no sooner): a
/// revoke never shortens the tenant's admin access, which it would need an
/// operator's `jobs-api create-key` to get back. Concurrent revokes of its
/// last two admin keys leave one.
std::optional<std::string> revoke_api_key(pqxx::connection& c, const tenant_id& t,
                                          std::string_view id);

/// Hex SHA-256 of a key.
std::string hash_api_key(std::string_view api_key);
/// Whether `api_key` has the form of the keys this platform makes ("jk_"
/// and 48 lower-case hex digits): any other is unknown without a lookup.
bool well_formed_api_key(std::string_view api_key);

}  // namespace jobs
