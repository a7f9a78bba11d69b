// ctest-labels: webhooks
// The webhooks.deliver payload as the worker reads it (workers/webhooks/payload.hpp).
#include "workers/webhooks/payload.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

using namespace jobs::webhooks;
using namespace std::chrono_literals;

namespace {
std::variant<delivery, std::string> parse(const char* json) {
  return parse_delivery(boost::json::parse(json), 15s);
}
std::string error(const char* json) {
  auto r = parse(json);
  return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
}
}  // namespace

TEST_CASE("URLs: scheme, host, port and target") {
  auto u = std::get<target_url>(parse_url("https://Example.com/hooks/a?x=1&y=2"));
  CHECK(u.tls);
  CHECK(u.host == "example.com");
  CHECK(u.port == 443);
  CHECK(u.target == "/hooks/a?x=1&y=2");
  CHECK(u.origin() == "https://example.com:443");
  auto p = std::get<target_url>(parse_url("http://127.0.0.1:8080"));
  CHECK_FALSE(p.tls);
  CHECK(p.port == 8080);
  CHECK(p.target == "/");
  auto v6 = std::get<target_url>(parse_url("http://[::ffff:127.0.0.1]:81/x"));
  CHECK(v6.host == "::ffff:127.0.0.1");
  auto odd = std::get<target_url>(parse_url("http://0177.0.0.1/"));
  CHECK(odd.host == "0177.0.0.1");  // a name to the URL grammar; address.hpp reads it
  CHECK(std::holds_alternative<std::string>(parse_url("ftp://example.com/")));
  // Found by fuzzing: Boost.URL reads "h:1:33/" as port 1 and the path ":33/".
  CHECK(std::holds_alternative<std::string>(parse_url("http://213070640:1:33/")));
  CHECK(std::holds_alternative<std::string>(parse_url("https://user:pw@example.com/")));
  CHECK(std::holds_alternative<std::string>(parse_url("/relative")));
  CHECK(std::holds_alternative<std::string>(parse_url("http://example.com:0/")));
  CHECK(std::holds_alternative<std::string>(parse_url("http:///nohost")));
  // A percent-encoded host is decoded: only a DNS name may come out of it,
  // never a line break into the Host header.
  CHECK(std::get<target_url>(parse_url("http://%65xample.com/")).host == "example.com");
  CHECK(std::get<target_url>(parse_url("http://under_score.example./")).host ==
        "under_score.example.");
  for (const char* bad : {"http://sink.test%00%0d%0aX-Injected%3a%20yes%0d%0a:80/hook",
                          "http://a%0d%0ab/", "http://a%20b/", "http://a..b/", "http://.a/",
                          "http://a%2fb/", "http://caf%C3%A9.example/"}) {
    CAPTURE(bad);
    auto r = parse_url(bad);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r).starts_with("url's host must be a DNS name"));
  }
  CHECK(std::holds_alternative<std::string>(
      parse_url("http://" + std::string(64, 'a') + ".example/")));
  // Ports past 16 bits are refused, not taken modulo 65536 (74435 was 8899).
  for (const char* bad :
       {"http://127.0.0.1:74435/wrapped", "http://example.com:99999/", "http://example.com:65536/",
        "http://example.com:00000/", "http://example.com:4294967377/", "http://example.com:/"}) {
    CAPTURE(bad);
    auto r = parse_url(bad);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r).starts_with("url has a bad port"));
  }
  CHECK(std::get<target_url>(parse_url("http://example.com:65535/")).port == 65535);
  CHECK(std::get<target_url>(parse_url("http://example.com:1/")).port == 1);
  CHECK(std::get<target_url>(parse_url("http://example.com:08080/")).port == 8080);
  // The worker refuses such a payload as a permanent error: the job is dead, not retried.
  CHECK(error(R"({"url":"http://127.0.0.1:74435/wrapped"})") ==
        R"(url has a bad port "74435": it must be from 1 to 65535)");
}

TEST_CASE("a payload with defaults and with every member") {
  auto d = std::get<delivery>(parse(R"({"url":"https://example.com/h","body":{"a":[1,2]}})"));
  CHECK_FALSE(d.put);
  CHECK(d.body == R"({"a":[1,2]})");
  CHECK(d.timeout == 15s);
  CHECK(d.endpoint == "default");
  CHECK(d.headers.empty());
  auto e = std::get<delivery>(
      parse(R"({"url":"http://example.com","method":"PUT","body":"text","timeout_ms":250,
                "endpoint":"billing","headers":{"X-Trace":"t1","Authorization":"Bearer z"}})"));
  CHECK(e.put);
  CHECK(e.body == R"("text")");
  CHECK(e.timeout == 250ms);
  CHECK(e.endpoint == "billing");
  CHECK(e.headers.size() == 2);
  CHECK(std::get<delivery>(parse(R"({"url":"http://example.com"})")).body == "null");
}

TEST_CASE("bad payloads are refused with a reason") {
  CHECK(error(R"([])") == "payload is not an object");
  CHECK(error(R"({})") == "url is required");
  CHECK(error(R"({"url":"gopher://x"})") == "url must be http or https");
  CHECK(error(R"({"url":"http://x","method":"GET"})") == "method must be POST or PUT");
  CHECK(error(R"({"url":"http://x","timeout_ms":0})").starts_with("timeout_ms"));
  CHECK(error(R"({"url":"http://x","headers":{"Host":"evil"}})").find("may not be set") !=
        std::string::npos);
  CHECK(error(R"({"url":"http://x","headers":{"webhook-signature":"v1,x"}})")
            .find("may not be set") != std::string::npos);
  for (const char* value : {R"(a\r\nHost: evil)", R"(1\u0001x)", R"(a\u007f)", R"(\u0000)"})
    CHECK(error((std::string(R"({"url":"http://x","headers":{"X-A":")") + value + R"("}})").c_str())
              .find("without control characters") != std::string::npos);
  CHECK(error(R"({"url":"http://x","headers":{"X-A":"a\tb é"}})").empty());
  CHECK(error(R"({"url":"http://x","endpoint":""})").starts_with("endpoint"));
}

TEST_CASE("only Authorization, User-Agent and X-* headers may be set") {
  CHECK(allowed_header("X-Request-Id"));
  CHECK(allowed_header("x-a"));
  CHECK(allowed_header("Authorization"));
  CHECK(allowed_header("user-agent"));
  for (const char* h : {"Host", "Content-Length", "Transfer-Encoding", "Connection", "Content-Type",
                        "webhook-id", "X-", "X-A B", "X_A", ""})
    CHECK_FALSE(allowed_header(h));
}
