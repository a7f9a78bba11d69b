#include "workers/webhooks/payload.hpp"

#include "common/json/json_text.hpp"

#include <fmt/format.h>
#include <boost/url/parse.hpp>

#include <algorithm>

namespace jobs::webhooks {

std::string target_url::origin() const {
  return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port);
}

std::variant<target_url, std::string> parse_url(std::string_view text) {
  auto u = boost::urls::parse_absolute_uri(text);
  if (!u) return std::string("url is not an absolute URL");
  target_url out;
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
  if (u->has_port()) {
    if (u->port().empty() || u->port_number() == 0) return std::string("url has a bad port");
    out.port = u->port_number();
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

bool allowed_header(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return (n.size() > 2 && n.starts_with("x-")) || n == "authorization" || n == "user-agent";
}

std::variant<delivery, std::string> parse_delivery(const boost::json::value& payload,
                                                   std::chrono::milliseconds default_timeout) {
  const auto* o = payload.if_object();
  if (!o) return std::string("payload is not an object");
  delivery d;
  const auto* url = o->if_contains("url");
  if (!url || !url->is_string()) return std::string("url is required");
  auto t = parse_url(url->get_string());
  if (auto* why = std::get_if<std::string>(&t)) return *why;
  d.url = std::get<target_url>(t);
  if (const auto* m = o->if_contains("method")) {
    if (!m->is_string() || (m->get_string() != "POST" && m->get_string() != "PUT"))
      return std::string("method must be POST or PUT");
    d.put = m->get_string() == "PUT";
  }
  const auto* body = o->if_contains("body");
  d.body = body ? json_text(*body) : "null";
  if (const auto* h = o->if_contains("headers")) {
    if (!h->is_object()) return std::string("headers must be an object");
    for (const auto& [k, v] : h->get_object()) {
      if (!allowed_header(k))
        return fmt::format("header {:?} may not be set (allowed: Authorization, User-Agent, X-*)",
                           std::string_view(k));
      if (!v.is_string() || v.get_string().find_first_of("\r\n") != std::string::npos)
        return fmt::format("header {:?} must be a string without line breaks", std::string_view(k));
      d.headers.emplace_back(std::string(k), std::string(v.get_string()));
    }
  }
  d.timeout = default_timeout;
  if (const auto* t = o->if_contains("timeout_ms")) {
    if (!t->is_int64() || t->get_int64() < 1 || t->get_int64() > 60000)
      return std::string("timeout_ms must be an integer from 1 to 60000");
    d.timeout = std::chrono::milliseconds(t->get_int64());
  }
  d.endpoint = "default";
  if (const auto* e = o->if_contains("endpoint")) {
    if (!e->is_string() || e->get_string().empty())
      return std::string("endpoint must be a non-empty string");
    d.endpoint = std::string(e->get_string());
  }
  return d;
}

}  // namespace jobs::webhooks
