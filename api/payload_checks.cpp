#include "api/payload_checks.hpp"

#include "api/submission.hpp"
#include "common/base64.hpp"
#include "common/webhook_url.hpp"

#include <fmt/format.h>

#include <string>

namespace jobs {

namespace {

std::optional<problem> base64_member(const boost::json::value& v, base64_padding padding,
                                     const std::string& pointer, std::string_view what) {
  const auto* s = v.if_string();
  if (!s) return std::nullopt;  // the schema said what it must be
  std::string why;
  if (is_base64(*s, padding, &why)) return std::nullopt;
  return make_problem(
      400, "payload_invalid",
      fmt::format(
          "{} is not {}: {}", what,
          padding == base64_padding::required ? "standard, padded base64" : "standard base64", why),
      pointer);
}

}  // namespace

std::optional<problem> check_payload(std::string_view queue, std::string_view type,
                                     const boost::json::value& payload) {
  const auto* obj = payload.if_object();
  if (!obj) return std::nullopt;
  if (queue == "email" && type == "send") {
    const auto* list = obj->if_contains("attachments");
    if (!list || !list->is_array()) return std::nullopt;
    const auto& a = list->get_array();
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto* content = a[i].is_object() ? a[i].get_object().if_contains("content") : nullptr;
      if (!content) continue;
      if (auto p = base64_member(*content, base64_padding::required,
                                 fmt::format("/payload/attachments/{}/content", i),
                                 fmt::format("attachments[{}].content", i)))
        return p;
    }
  }
  if (queue == "webhooks" && type == "deliver") {
    // The worker would refuse it and the job die (a port past 65535 was
    // once taken modulo 65536 and delivered elsewhere): say so now.
    const auto* url = obj->if_contains("url");
    if (url && url->is_string())
      if (auto parsed = parse_webhook_url(url->get_string());
          const auto* why = std::get_if<std::string>(&parsed))
        return make_problem(400, "payload_invalid", *why, "/payload/url");
  }
  if (queue == "processing" && type == "hash") {
    if (const auto* in = obj->if_contains("input_base64"))
      return base64_member(*in, base64_padding::optional, "/payload/input_base64", "input_base64");
  }
  return std::nullopt;
}

}  // namespace jobs
