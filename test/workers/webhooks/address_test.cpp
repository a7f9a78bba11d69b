// ctest-labels: webhooks
// SSRF rules of the webhook worker (workers/webhooks/address.hpp).
#include "workers/webhooks/address.hpp"

#include <doctest/doctest.h>

using namespace jobs::webhooks;

namespace {
ip::address addr(const char* s) { return ip::make_address(s); }
bool forbidden(const char* s) { return forbidden_range(addr(s)).has_value(); }
// An address read from a host, as text, or "none".
template <class Address>
std::string text(const std::optional<Address>& a) {
  return a ? a->to_string() : std::string("none");
}
}  // namespace

TEST_CASE("inet_aton spellings of IPv4 addresses are read as inet_aton reads them") {
  auto v4 = [](const char* s) { return text(parse_inet_aton(s)); };
  CHECK(v4("127.0.0.1") == "127.0.0.1");
  CHECK(v4("2130706433") == "127.0.0.1");
  CHECK(v4("0177.0.0.1") == "127.0.0.1");
  CHECK(v4("0x7f.0.0.1") == "127.0.0.1");
  CHECK(v4("0x7f000001") == "127.0.0.1");
  CHECK(v4("017700000001") == "127.0.0.1");
  CHECK(v4("127.1") == "127.0.0.1");
  CHECK(v4("127.0.1") == "127.0.0.1");
  CHECK(v4("0x7f.1") == "127.0.0.1");
  CHECK(v4("10.0x10.0300") == "10.16.0.192");
  CHECK(v4("0") == "0.0.0.0");
  CHECK(v4("169.254.43518") == "169.254.169.254");
  CHECK(v4("4294967295") == "255.255.255.255");
  CHECK(v4("4294967296") == "none");  // too large
  CHECK(v4("256.0.0.1") == "none");
  CHECK(v4("1.2.3.4.5") == "none");
  CHECK(v4("1.2.3.") == "none");
  CHECK(v4("08.0.0.1") == "none");  // 8 is not octal
  CHECK(v4("127.0.0.1a") == "none");
  CHECK(v4("example.com") == "none");
  CHECK(v4("") == "none");
  CHECK(v4("1.256.3") == "none");
  CHECK(v4("1.2.65536") == "none");
}

TEST_CASE("a literal address is known without a lookup; a name is not") {
  auto lit = [](const char* s) { return text(literal_address(s)); };
  CHECK(lit("127.0.0.1") == "127.0.0.1");
  CHECK(lit("::1") == "::1");
  CHECK(lit("::ffff:7f00:1") == "::ffff:127.0.0.1");
  CHECK(lit("0x7f.1") == "127.0.0.1");
  CHECK(lit("2130706433") == "127.0.0.1");
  CHECK(lit("localhost") == "none");
  CHECK(lit("example.com") == "none");
  CHECK(lit("") == "none");
}

TEST_CASE("loopback, private, link-local, CGNAT, multicast and unspecified are refused") {
  for (const char* a : {"127.0.0.1",
                        "127.255.255.254",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "100.127.255.255",
                        "0.0.0.0",
                        "0.1.2.3",
                        "224.0.0.1",
                        "239.255.255.250",
                        "255.255.255.255",
                        "240.0.0.1",
                        "198.18.0.1",
                        "192.0.0.8",
                        "::",
                        "::1",
                        "fe80::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "ff02::1",
                        "fec0::1"}) {
    CAPTURE(a);
    CHECK(forbidden(a));
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1",
                        "11.0.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888"}) {
    CAPTURE(a);
    CHECK_FALSE(forbidden(a));
  }
  CHECK(forbidden_range(addr("127.0.0.1"))->starts_with("loopback"));
  CHECK(forbidden_range(addr("100.64.0.1"))->starts_with("CGNAT"));
}

TEST_CASE("IPv6 forms that carry an IPv4 address are judged by that address") {
  for (const char* a : {"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::127.0.0.1",
                        "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::",
                        "2002:c0a8:101::1", "::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe"}) {
    CAPTURE(a);
    CHECK(forbidden(a));
  }
  CHECK(effective_address(addr("::ffff:8.8.8.8")) == addr("8.8.8.8"));
  CHECK_FALSE(forbidden("::ffff:8.8.8.8"));
  CHECK_FALSE(forbidden("64:ff9b::808:808"));
  CHECK_FALSE(forbidden("2002:808:808::1"));
  CHECK(effective_address(addr("::ffff:0:8.8.8.8")) == addr("8.8.8.8"));  // IPv4-translated
  CHECK(effective_address(addr("::1")) == addr("::1"));
}

TEST_CASE("CIDRs parse and match, IPv4-mapped addresses included") {
  auto c = parse_cidr("10.0.0.0/8");
  REQUIRE(c);
  CHECK(c->contains(addr("10.255.0.1")));
  CHECK_FALSE(c->contains(addr("11.0.0.1")));
  CHECK(c->contains(addr("::ffff:10.0.0.1")));
  auto host = parse_cidr("127.0.0.1");
  REQUIRE(host);
  CHECK(host->prefix == 32);
  CHECK(host->contains(addr("127.0.0.1")));
  CHECK_FALSE(host->contains(addr("127.0.0.2")));
  auto v6 = parse_cidr("fd00::/8");
  REQUIRE(v6);
  CHECK(v6->contains(addr("fd12::1")));
  CHECK_FALSE(v6->contains(addr("fe80::1")));
  CHECK(parse_cidr("0.0.0.0/0")->contains(addr("8.8.8.8")));
  CHECK_FALSE(parse_cidr("10.0.0.0/33"));
  CHECK_FALSE(parse_cidr("10.0.0.0/"));
  CHECK_FALSE(parse_cidr("10.0.0.0/x"));
  CHECK_FALSE(parse_cidr("example.com"));
}

TEST_CASE("the allow-list exempts CIDRs and host names, nothing else") {
  auto allow = allow_list::parse(" 127.0.0.1/32, hooks.internal ,fd00::/8");
  CHECK(allow.allows(addr("127.0.0.1")));
  CHECK_FALSE(allow.allows(addr("127.0.0.2")));
  CHECK(allow.allows_host("HOOKS.internal"));
  CHECK_FALSE(allow.allows_host("other.internal"));
  CHECK_FALSE(refuse("localhost", addr("127.0.0.1"), allow));
  CHECK(refuse("localhost", addr("::1"), allow));
  CHECK_FALSE(refuse("hooks.internal", addr("10.0.0.7"), allow));
  CHECK(refuse("x.example", addr("10.0.0.7"), allow));
  CHECK(refuse("x.example", addr("10.0.0.7"), allow)->find("private") != std::string::npos);
  CHECK_FALSE(refuse("x.example", addr("93.184.215.14"), allow_list{}));
  CHECK(allow_list::parse("").empty());
  CHECK_THROWS_AS(allow_list::parse("10.0.0.0/99"), std::invalid_argument);
  CHECK_THROWS_AS(allow_list::parse("bad host!"), std::invalid_argument);
}
