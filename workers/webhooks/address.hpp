#pragma once
// SSRF rules for webhook destinations: which addresses a worker may reach.
//
// A destination is refused when its address is loopback, private, link-local,
// CGNAT, multicast, unspecified, broadcast or otherwise reserved, in IPv4 or
// IPv6. IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d,
// IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged
// by the IPv4 address inside. Host names that spell an IPv4 address the way
// inet_aton reads it (2130706433, 0177.0.0.1, 0x7f.1, 127.1) are that
// address, never a name to look up.
//
// An allow_list (JOBS_WEBHOOK_ALLOW: comma-separated CIDRs and host names)
// exempts internal targets: an address inside an allowed CIDR, or any
// address of an allowed host name.
//
// Pure functions; allow_list is immutable after parsing (thread-safe).

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::webhooks {

namespace ip = boost::asio::ip;

/// The host as inet_aton reads it: 1 to 4 dot-separated parts, each
/// decimal, octal (leading 0) or hex (0x); the last part fills the bytes
/// left. nullopt for anything else (a host name).
std::optional<ip::address_v4> parse_inet_aton(std::string_view host);

/// The address a host stands for without a lookup: an IP literal, or
/// inet_aton's reading of it; nullopt for a name.
std::optional<ip::address> literal_address(std::string_view host);

/// The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64,
/// 6to4), or the address itself.
ip::address effective_address(const ip::address& a);

/// Why `a` must not be reached ("loopback", "private", …), or nullopt when
/// it is a public unicast address.
std::optional<std::string> forbidden_range(const ip::address& a);

struct cidr {
  ip::address network;
  int prefix = 0;
  bool contains(const ip::address& a) const;
};
/// "10.0.0.0/8", "::1/128", or a bare address (a host route); nullopt if malformed.
std::optional<cidr> parse_cidr(std::string_view s);

class allow_list {
 public:
  allow_list() = default;
  /// Comma-separated CIDRs and host names; throws std::invalid_argument on a bad entry.
  static allow_list parse(std::string_view list);
  bool allows_host(std::string_view host) const;
  bool allows(const ip::address& a) const;
  bool empty() const { return cidrs_.empty() && hosts_.empty(); }

 private:
  std::vector<cidr> cidrs_;
  std::vector<std::string> hosts_;  // lower case
};

/// The verdict on one resolved address of `host`: nullopt when it may be
/// reached, else why not (for the job's error).
std::optional<std::string> refuse(std::string_view host, const ip::address& a,
                                  const allow_list& allow);

}  // namespace jobs::webhooks
