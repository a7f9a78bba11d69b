#pragma once
// A webhook's URL as its delivery uses it, shared by the API (refused at
// submission: a schema's "format": "webhook-url", common/schema.hpp) and the
// webhooks worker (refused again, the job dead, if one written around the API
// ever reaches it).
//
//   scheme   http or https
//   host     a DNS name (percent-decoded: letters, digits, '-', '_' and
//            dots), an IPv4 or an IPv6 address; no user info
//   port     1..65535 (default 80 or 443); anything else is refused, never
//            taken modulo 65536
//   target   path and query, "/" at least; no fragment is sent
//
// Pure; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace jobs {

struct webhook_url {
  bool tls = false;
  std::string host;  ///< a name, or an address without brackets
  std::uint16_t port = 0;
  std::string target;          ///< path and query, "/" at least
  std::string origin() const;  ///< scheme://host:port, the connection pool's key
};

/// The URL as the client uses it, or why not ("url has a bad port: ...").
std::variant<webhook_url, std::string> parse_webhook_url(std::string_view url);

}  // namespace jobs
