#include "common/webhook_url.hpp"

#include <fmt/format.h>
#include <boost/url/parse.hpp>

#include <cctype>

namespace jobs {

std::string webhook_url::origin() const {
  return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port);
}

namespace {
// Boost.URL's port_number() is 16 bits: "74435" would be 8899. Read the
// digits ourselves.
std::uint16_t port_of(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return 0;
  unsigned n = 0;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n <= 65535 ? static_cast<std::uint16_t>(n) : 0;
}
// A DNS name as a resolver takes it (RFC 1123 labels, `_` allowed as in
// service names, a final dot allowed), lower-cased. Boost.URL decodes a
// percent-encoded host ("sink%0d%0a…"): anything else, a control character
// among it, would reach the resolver and the Host header.
bool is_dns_name(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}
}  // namespace

std::variant<webhook_url, std::string> parse_webhook_url(std::string_view text) {
  auto u = boost::urls::parse_absolute_uri(text);
  if (!u) return std::string("url is not an absolute URL");
  webhook_url out;
  auto scheme = u->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https)
    return std::string("url must be http or https");
  out.tls = scheme == boost::urls::scheme::https;
  if (u->has_userinfo()) return std::string("url must not carry user info");
  switch (u->host_type()) {
    case boost::urls::host_type::ipv4: out.host = u->host_ipv4_address().to_string(); break;
    case boost::urls::host_type::ipv6: out.host = u->host_ipv6_address().to_string(); break;
    case boost::urls::host_type::name: out.host = u->host_name(); break;
    default: return std::string("url has no usable host");
  }
  if (out.host.empty()) return std::string("url has no host");
  for (auto& c : out.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u->host_type() == boost::urls::host_type::name && !is_dns_name(out.host))
    return std::string(
        "url's host must be a DNS name (letters, digits, '-', '_', dot-separated labels of at "
        "most 63) or an IP address");
  if (u->has_port()) {
    out.port = port_of(u->port());
    if (out.port == 0)
      return fmt::format("url has a bad port {:?}: it must be from 1 to 65535",
                         std::string_view(u->port()).substr(0, 16));
  } else {
    out.port = out.tls ? 443 : 80;
  }
  out.target = std::string(u->encoded_path());
  if (out.target.empty()) out.target = "/";
  // Boost.URL 1.81 reads "http://h:1:2/" as port 1 and path ":2/" (found by
  // fuzzing): a request target must be a path.
  if (out.target[0] != '/') return std::string("url has a bad port or path");
  if (u->has_query()) out.target += "?" + std::string(u->encoded_query());
  return out;
}

}  // namespace jobs
