#include "workers/webhooks/payload.hpp"

#include "common/json/json_text.hpp"
#include "common/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace jobs::webhooks {

std::variant<target_url, std::string> parse_url(std::string_view text) {
  return parse_webhook_url(text);
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
      if (!v.is_string() || !is_field_value(v.get_string()))
        return fmt::format("header {:?} must be a string without control characters but tab",
                           std::string_view(k));
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
