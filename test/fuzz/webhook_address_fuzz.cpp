// Fuzz target: the webhook URL and SSRF address checks. The input's first
// line is a URL (parse_url), the second an allow list (allow_list::parse),
// the rest a host or address; each parsed address goes through the SSRF
// verdict. A refused IPv4 address must stay refused when spelled as IPv6.
#include "workers/webhooks/address.hpp"
#include "workers/webhooks/payload.hpp"

#include <boost/json/parse.hpp>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace wh = jobs::webhooks;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto line = [&in] {
    auto nl = in.find('\n');
    auto out = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    return out;
  };
  auto url = line();
  auto allow_text = line();
  auto host = in;

  auto parsed = wh::parse_url(url);
  if (auto* t = std::get_if<wh::target_url>(&parsed)) {
    if (t->host.empty() || t->target.empty() || t->target[0] != '/') std::abort();
    (void)t->origin();
  }
  boost::system::error_code ec;
  auto payload = boost::json::parse(url, ec);
  if (!ec) (void)wh::parse_delivery(payload, std::chrono::milliseconds(1000));

  wh::allow_list allow;
  try {
    allow = wh::allow_list::parse(allow_text);
  } catch (const std::invalid_argument&) {
  }
  (void)wh::parse_cidr(host);
  std::optional<wh::ip::address> a;
  if (auto v4 = wh::parse_inet_aton(host)) a = *v4;
  if (!a) {
    auto b = wh::ip::make_address(std::string(host), ec);
    if (!ec) a = b;
  }
  if (a) {
    auto why = wh::refuse(host, *a, allow);
    auto bare = wh::refuse(host, *a, wh::allow_list{});
    if (!bare && wh::forbidden_range(*a)) std::abort();
    if (why && !bare) std::abort();  // allowing more never refuses more
    if (a->is_v4() && bare) {
      auto mapped = wh::ip::make_address_v6(wh::ip::v4_mapped, a->to_v4());
      if (!wh::forbidden_range(mapped)) std::abort();
    }
  }
  return 0;
}
