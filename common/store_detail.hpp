#pragma once
// Shared by common/store*.cpp only: how they run their statements and
// encode their parameters.

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace jobs::detail {

// The hot statements run prepared: PostgreSQL plans them once per connection
// instead of at every call (planning the claim and the completion cost about
// as much as running them). libpqxx keeps the definition per connection and
// prepares it on first use; registering the same one again is a no-op.
template <class... Args>
pqxx::result exec_prepared_as(pqxx::transaction_base& w, const char* name, const char* sql,
                              Args&&... args) {
  w.conn().prepare(name, sql);
  return w.exec_prepared(name, std::forward<Args>(args)...);
}

inline void append_json_string(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string(s));
}

/// Appends `,"name":` and `s` as a JSON string: a member after the first.
inline void append_json_member(std::string& out, std::string_view name, std::string_view s) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, s);
}

/// A PostgreSQL bigint[] literal of `ids`.
inline std::string bigint_array(std::span<const std::int64_t> ids) {
  std::string out = "{";
  for (auto id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
  return out + "}";
}

}  // namespace jobs::detail
