#include "workers/webhooks/address.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace jobs::webhooks {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One inet_aton part: decimal, 0-octal or 0x-hex, no sign, no empty part.
std::optional<std::uint64_t> parse_part(std::string_view p) {
  int base = 10;
  if (p.size() > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p.remove_prefix(2);
  } else if (p.size() > 1 && p[0] == '0') {
    base = 8;
    p.remove_prefix(1);
  }
  if (p.empty()) return base == 16 ? std::optional<std::uint64_t>(0) : std::nullopt;
  std::uint64_t v = 0;
  for (char c : p) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > 0xffffffffULL) return std::nullopt;
  }
  return v;
}

struct v4_range {
  std::uint32_t net;
  int prefix;
  const char* why;
};

constexpr std::uint32_t v4(int a, int b, int c, int d) {
  return (std::uint32_t(a) << 24) | (std::uint32_t(b) << 16) | (std::uint32_t(c) << 8) |
         std::uint32_t(d);
}

constexpr std::array<v4_range, 15> v4_forbidden{{
    {v4(0, 0, 0, 0), 8, "unspecified (0.0.0.0/8)"},
    {v4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"},
    {v4(100, 64, 0, 0), 10, "CGNAT (100.64.0.0/10)"},
    {v4(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"},
    {v4(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"},
    {v4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"},
    {v4(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"},
    {v4(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"},
    {v4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"},
    {v4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"},
    {v4(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"},
    {v4(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"},
    {v4(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"},
    {v4(240, 0, 0, 0), 4, "reserved or broadcast (240.0.0.0/4)"},
}};

bool v4_in(std::uint32_t a, std::uint32_t net, int prefix) {
  if (prefix == 0) return true;
  std::uint32_t mask = prefix >= 32 ? 0xffffffffU : ~(0xffffffffU >> prefix);
  return (a & mask) == (net & mask);
}

bool bytes_in(const ip::address_v6::bytes_type& a, const ip::address_v6::bytes_type& net,
              int prefix) {
  for (int i = 0; i < 16 && prefix > 0; ++i, prefix -= 8) {
    unsigned mask = prefix >= 8 ? 0xffU : (0xffU << (8 - prefix)) & 0xffU;
    if ((a[i] & mask) != (net[i] & mask)) return false;
  }
  return true;
}

ip::address_v6::bytes_type v6_bytes(const char* s) { return ip::make_address_v6(s).to_bytes(); }

}  // namespace

std::optional<ip::address_v4> parse_inet_aton(std::string_view host) {
  if (host.empty() || host.back() == '.') return std::nullopt;
  std::vector<std::uint64_t> parts;
  while (true) {
    auto dot = host.find('.');
    auto v = parse_part(host.substr(0, dot));
    if (!v || parts.size() == 4) return std::nullopt;
    parts.push_back(*v);
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
  }
  if (parts.size() > 4) return std::nullopt;
  std::uint64_t addr = 0;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] > 0xff) return std::nullopt;
    addr |= parts[i] << (8 * (3 - i));
  }
  auto bits_left = 8 * (4 - (parts.size() - 1));
  if (bits_left < 32 && parts.back() >= (1ULL << bits_left)) return std::nullopt;
  addr |= parts.back();
  return ip::address_v4(static_cast<std::uint32_t>(addr));
}

std::optional<ip::address> literal_address(std::string_view host) {
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(host), ec);
  if (!ec) return a;
  if (auto v4 = parse_inet_aton(host)) return ip::address(*v4);
  return std::nullopt;
}

ip::address effective_address(const ip::address& a) {
  if (!a.is_v6()) return a;
  auto b = a.to_v6().to_bytes();
  auto tail = [&](int at) { return ip::address_v4(v4(b[at], b[at + 1], b[at + 2], b[at + 3])); };
  static const auto nat64 = v6_bytes("64:ff9b::");
  static const auto sixto4 = v6_bytes("2002::");
  static const auto translated = v6_bytes("::ffff:0:0:0");  // SIIT, RFC 2765 / 6145
  static const auto zero = ip::address_v6::bytes_type{};
  if (a.to_v6().is_v4_mapped()) return tail(12);
  if (bytes_in(b, nat64, 96) || bytes_in(b, translated, 96)) return tail(12);
  if (bytes_in(b, sixto4, 16)) return tail(2);
  // IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 are themselves.
  if (bytes_in(b, zero, 96) && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1))
    return tail(12);
  return a;
}

std::optional<std::string> forbidden_range(const ip::address& addr) {
  auto a = effective_address(addr);
  if (a.is_v4()) {
    auto u = a.to_v4().to_uint();
    for (const auto& r : v4_forbidden)
      if (v4_in(u, r.net, r.prefix)) return std::string(r.why);
    return std::nullopt;
  }
  struct v6_range {
    const char* net;
    int prefix;
    const char* why;
  };
  static const std::array<v6_range, 10> ranges{{
      {"::", 128, "unspecified (::)"},
      {"::1", 128, "loopback (::1)"},
      {"::", 96, "IPv4-compatible reserved (::/96)"},
      {"64:ff9b:1::", 48, "local-use NAT64 (64:ff9b:1::/48)"},
      {"100::", 64, "discard-only (100::/64)"},
      {"2001:db8::", 32, "documentation (2001:db8::/32)"},
      {"fc00::", 7, "private, unique local (fc00::/7)"},
      {"fe80::", 10, "link-local (fe80::/10)"},
      {"fec0::", 10, "site-local (fec0::/10)"},
      {"ff00::", 8, "multicast (ff00::/8)"},
  }};
  auto b = a.to_v6().to_bytes();
  for (const auto& r : ranges)
    if (bytes_in(b, v6_bytes(r.net), r.prefix)) return std::string(r.why);
  return std::nullopt;
}

bool cidr::contains(const ip::address& addr) const {
  auto a = effective_address(addr);
  if (a.is_v4() != network.is_v4()) return false;
  if (a.is_v4()) return v4_in(a.to_v4().to_uint(), network.to_v4().to_uint(), prefix);
  return bytes_in(a.to_v6().to_bytes(), network.to_v6().to_bytes(), prefix);
}

std::optional<cidr> parse_cidr(std::string_view s) {
  auto slash = s.find('/');
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(s.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  int max = a.is_v4() ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    auto p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit))
      return std::nullopt;
    prefix = std::stoi(std::string(p));
    if (prefix > max) return std::nullopt;
  }
  return cidr{a, prefix};
}

allow_list allow_list::parse(std::string_view list) {
  allow_list out;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    list = comma == std::string_view::npos ? "" : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (auto c = parse_cidr(item)) {
      out.cidrs_.push_back(*c);
    } else if (item.find('/') == std::string_view::npos &&
               std::all_of(item.begin(), item.end(), [](char ch) {
                 return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.';
               })) {
      out.hosts_.push_back(lower(item));
    } else {
      throw std::invalid_argument(fmt::format("not a CIDR or host name: {:?}", item));
    }
  }
  return out;
}

bool allow_list::allows_host(std::string_view host) const {
  auto h = lower(host);
  return std::find(hosts_.begin(), hosts_.end(), h) != hosts_.end();
}

bool allow_list::allows(const ip::address& a) const {
  return std::any_of(cidrs_.begin(), cidrs_.end(), [&](const cidr& c) { return c.contains(a); });
}

std::optional<std::string> refuse(std::string_view host, const ip::address& a,
                                  const allow_list& allow) {
  if (allow.allows_host(host) || allow.allows(a)) return std::nullopt;
  auto why = forbidden_range(a);
  if (!why) return std::nullopt;
  return fmt::format("{} is {}: refused (SSRF protection; see JOBS_WEBHOOK_ALLOW)", a.to_string(),
                     *why);
}

}  // namespace jobs::webhooks
