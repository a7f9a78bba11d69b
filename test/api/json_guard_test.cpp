// ctest-labels: security
// The strict JSON checks and the request-head limits: each hostile input
// gets its documented code.
#include "api/json_guard.hpp"
#include "api/http_limits.hpp"
#include "api/submission.hpp"

#include <doctest/doctest.h>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>

#include <string>
#include <vector>

using namespace jobs;

namespace {

std::string code_of(std::string_view body, json_limits l = {}) {
  auto p = check_json(body, l);
  return p ? p->code : "";
}

}  // namespace

TEST_CASE("valid JSON within the limits passes") {
  CHECK(code_of(R"({"a":[1,2,{"b":"c"}],"d":-9223372036854775808,"e":18446744073709551615})") ==
        "");
  CHECK(code_of(R"({"x":1.5e300,"y":"caf\u00e9 \ud83d\ude00","z":"Grüße"})") == "");
  CHECK(code_of(R"({"a":{"k":1},"b":{"k":2}})") == "");  // the same key in different objects
}

TEST_CASE("each violation has its code and pointer") {
  CHECK(code_of("{\"a\":\"\xff\"}") == "invalid_utf8");
  CHECK(code_of("{\"a\":\"\xc0\xaf\"}") == "invalid_utf8");      // overlong '/'
  CHECK(code_of("{\"a\":\"\xed\xa0\x80\"}") == "invalid_utf8");  // a surrogate
  CHECK(code_of("{\"a\":\"\xf4\x90\x80\x80\"}") == "invalid_utf8");
  CHECK(code_of(std::string(100000, '[')) == "json_too_deep");
  CHECK(code_of(R"({"a":1,"b":2,"a":3})") == "json_duplicate_key");
  auto dup = check_json(R"({"p":{"x":[{"k":1,"k":2}]}})", {});
  REQUIRE(dup);
  CHECK(dup->pointer == "/p/x/0/k");
  CHECK(code_of(R"({"n":123456789012345678901234567890})") == "json_number_out_of_range");
  CHECK(code_of(R"({"n":-9223372036854775809})") == "json_number_out_of_range");
  CHECK(code_of(R"({"n":1e400})") == "json_number_out_of_range");
  CHECK(code_of(R"({"s":"12345"})", {.max_string = 4}) == "json_string_too_long");
  CHECK(code_of(R"({"12345":1})", {.max_string = 4}) == "json_string_too_long");
  CHECK(code_of(R"({"a":[1,2,3]})", {.max_array = 2}) == "json_array_too_long");
  CHECK(code_of(R"({"a":[1,2]})", {.max_array = 2}) == "");
  CHECK(code_of(R"({"a":[[],{},"x"]})", {.max_array = 2}) == "json_array_too_long");
  CHECK(code_of(R"({"a":)") == "invalid_json");
  CHECK(code_of(R"({"a":1} x)") == "invalid_json");
}

TEST_CASE("invalid JSON says where, and what is wrong with a lone surrogate escape") {
  auto at = check_json(R"({"a": tru})", {});
  REQUIRE(at);
  CHECK(at->detail == "syntax error at byte 6");
  for (const char* body : {R"({"a":"x\ud800"})", R"({"a":"\ud800\u0041"})", R"({"a":"\uDC00"})"}) {
    auto p = check_json(body, {});
    REQUIRE(p);
    CHECK(p->code == "invalid_json");
    CHECK_MESSAGE(p->detail.find("is a lone UTF-16 surrogate") != std::string::npos, p->detail);
  }
  auto lone = check_json(R"({"a":"x\ud800"})", {});
  REQUIRE(lone);
  CHECK(lone->detail.find(R"(: \ud800 is a lone)") != std::string::npos);
  CHECK_FALSE(check_json(R"({"a":"\ud83d\ude00 \u00e9"})", {}));
}

TEST_CASE("a submission with a duplicate key is refused before it is read") {
  auto r = parse_json_object(R"({"queue":"processing","queue":"email"})", {});
  REQUIRE(std::holds_alternative<problem>(r));
  CHECK(std::get<problem>(r).code == "json_duplicate_key");
  CHECK(std::get<problem>(r).status == 400);
}

TEST_CASE("the request head: target length and header count") {
  boost::beast::http::request_header<> h;
  h.target(std::string(100, 'a'));
  CHECK(!check_request_head(h, {.url_limit = 100, .max_headers = 2}));
  h.target(std::string(101, 'a'));
  auto p = check_request_head(h, {.url_limit = 100, .max_headers = 2});
  REQUIRE(p);
  CHECK(p->status == 414);
  CHECK(p->code == "url_too_long");
  h.target("/");
  h.insert("X-A", "1");
  h.insert("X-A", "2");
  CHECK(!check_request_head(h, {.url_limit = 100, .max_headers = 2}));
  h.insert("X-B", "3");
  p = check_request_head(h, {.url_limit = 100, .max_headers = 2});
  REQUIRE(p);
  CHECK(p->status == 431);
  CHECK(p->code == "too_many_headers");
}

TEST_CASE("the request head: Expect is 100-continue or nothing (else 417 expectation_failed)") {
  auto head = [](std::vector<const char*> expect, unsigned version = 11) {
    boost::beast::http::request_header<> h;
    h.version(version);
    h.target("/v1/jobs");
    for (auto* e : expect) h.insert(boost::beast::http::field::expect, e);
    return h;
  };
  const head_limits limits{.url_limit = 100, .max_headers = 10};
  for (auto expect : std::vector<std::vector<const char*>>{
           {}, {"100-continue"}, {"100-Continue"}, {" 100-continue , "}, {""}}) {
    CAPTURE(expect.size());
    CHECK_FALSE(check_request_head(head(expect), limits));
  }
  CHECK(wants_continue(head({"100-continue"})));
  CHECK(wants_continue(head({"100-CONTINUE"})));
  CHECK(wants_continue(head({"100-continue,"})));
  CHECK_FALSE(wants_continue(head({})));
  CHECK_FALSE(wants_continue(head({""})));
  CHECK_FALSE(wants_continue(head({"100-continue"}, 10)));  // RFC 9110: ignored in HTTP/1.0
  for (auto expect : std::vector<std::vector<const char*>>{{"200-ok"},
                                                           {"100-continue, x-fast"},
                                                           {"100-continue", "x-fast"},
                                                           {"100-continue=1"},
                                                           {"100-continuex"}}) {
    CAPTURE(expect.back());
    auto p = check_request_head(head(expect), limits);
    REQUIRE(p);
    CHECK(p->status == 417);
    CHECK(p->code == "expectation_failed");
    CHECK_FALSE(wants_continue(head(expect)));
  }
  // HTTP/1.0 ignores only 100-continue.
  CHECK_FALSE(check_request_head(head({"100-continue"}, 10), limits));
  CHECK(check_request_head(head({"200-ok"}, 10), limits));
}

TEST_CASE("the request head: Transfer-Encoding is chunked alone (400 unless last, else 501)") {
  auto head = [](std::vector<const char*> codings) {
    boost::beast::http::request_header<> h;
    h.version(11);
    h.target("/v1/jobs");
    for (auto* c : codings) h.insert(boost::beast::http::field::transfer_encoding, c);
    return h;
  };
  const head_limits limits{.url_limit = 100, .max_headers = 10};
  for (auto te : std::vector<std::vector<const char*>>{
           {}, {"chunked"}, {"Chunked"}, {" chunked "}, {"chunked;x=1"}, {",chunked,"}}) {
    CAPTURE(te.size());
    CHECK_FALSE(check_request_head(head(te), limits));
  }
  for (auto te : std::vector<std::vector<const char*>>{{"gzip"},
                                                       {"identity"},
                                                       {"chunked, identity"},
                                                       {"chunked", "gzip"},
                                                       {""},
                                                       {"xchunked"}}) {
    CAPTURE(te.back());
    auto p = check_request_head(head(te), limits);
    REQUIRE(p);
    CHECK(p->status == 400);
    CHECK(p->code == "bad_request");
  }
  for (auto te : std::vector<std::vector<const char*>>{{"gzip, chunked"}, {"gzip", "chunked"}}) {
    CAPTURE(te.size());
    auto p = check_request_head(head(te), limits);
    REQUIRE(p);
    CHECK(p->status == 501);
    CHECK(p->code == "unsupported_transfer_coding");
  }
}

TEST_CASE("a request Beast cannot parse is 400 bad_request saying which part is malformed") {
  namespace http = boost::beast::http;
  auto value = read_problem(http::error::bad_value, 1 << 20);
  CHECK(value.status == 400);
  CHECK(value.code == "bad_request");
  CHECK(value.detail.starts_with("a header field's value is malformed"));
  CHECK(read_problem(http::error::bad_field, 1 << 20).detail.starts_with("a header field's name"));
  CHECK(read_problem(http::error::bad_content_length, 1 << 20).detail ==
        "Content-Length is malformed");
  CHECK(read_problem(http::error::body_limit, 1 << 20).code == "body_too_large");
  // What has no words of its own keeps Beast's.
  CHECK(read_problem(http::error::partial_message, 1 << 20).detail ==
        boost::system::error_code(http::error::partial_message).message());
}
