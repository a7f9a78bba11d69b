#include "common/schema.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using jobs::schema_registry;

// A fresh directory of schema files, removed at the end of the test.
struct temp_dir {
  fs::path path;

  explicit temp_dir(const std::map<std::string, std::string>& files) {
    path = fs::temp_directory_path() / ("schema_test-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
    for (const auto& [name, text] : files) std::ofstream(path / name) << text;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

constexpr const char* kinds_schema = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["name", "items"],
  "additionalProperties": false,
  "properties": {
    "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
    "mode": {"enum": ["fast", "slow"]},
    "count": {"type": "integer", "minimum": 1, "maximum": 10},
    "ratio": {"type": "number", "exclusiveMaximum": 0.5},
    "items": {
      "type": "array",
      "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    },
    "nested": {
      "type": "object",
      "properties": {"inner": {"type": "object", "properties": {"flag": {"type": "boolean"}}}}
    },
    "a/b~c": {"type": "string"},
    "7": {"type": "string"},
    "free": {"type": "string", "pattern": "^x+$"},
    "when": {"type": "string", "format": "date-time"},
    "site": {"type": "string", "format": "uri"}
  }
})";

const std::map<std::string, std::string> test_files{
    {"test.all.kinds.schema.json", kinds_schema},
    {"test.b.schema.json", R"({"type": "object"})"},
    {"other.x.schema.json", R"({"type": "integer"})"},
    {"README.md", "not a schema"},
};

// The payload {"name": "abc", "items": [{"name": "x"}]} with `patch` merged in.
json::value payload_with(std::string_view patch) {
  json::object p = json::parse(R"({"name": "abc", "items": [{"name": "x"}]})").as_object();
  const json::value extra = json::parse(patch);
  for (const auto& [key, value] : extra.as_object()) p[key] = value;
  return p;
}

struct failure {
  std::string pointer;
  std::string detail;
};

failure fail(const schema_registry& r, const json::value& payload) {
  const auto p = r.validate("test", "all.kinds", payload);
  REQUIRE(p.has_value());
  CHECK(p->status == 400);
  CHECK(p->code == "payload_invalid");
  CHECK(p->title == "Payload does not match the job type's schema");
  return {p->pointer, p->detail};
}

}  // namespace

TEST_CASE("json_pointer_escape escapes ~ before /") {
  CHECK(jobs::json_pointer_escape("plain") == "plain");
  CHECK(jobs::json_pointer_escape("a/b~c") == "a~1b~0c");
  CHECK(jobs::json_pointer_escape("~1") == "~01");
  CHECK(jobs::json_pointer_escape("") == "");
}

TEST_CASE("schema_registry lists the types of each queue, sorted, with dotted types") {
  temp_dir dir(test_files);
  const schema_registry r(dir.path);
  CHECK(r.types("test") == std::vector<std::string>{"all.kinds", "b"});
  CHECK(r.types("other") == std::vector<std::string>{"x"});
  CHECK(r.types("nope").empty());
  CHECK(r.has_type("test", "all.kinds"));
  CHECK_FALSE(r.has_type("test", "all"));
  CHECK_FALSE(r.has_type("all", "kinds.test"));
}

TEST_CASE("schema_registry accepts a valid payload") {
  temp_dir dir(test_files);
  const schema_registry r(dir.path);
  CHECK_FALSE(r.validate("test", "all.kinds", payload_with("{}")));
  CHECK_FALSE(r.validate("test", "all.kinds",
                         payload_with(R"({"mode": "slow", "count": 10, "nested": {"inner": {}},
                             "a/b~c": "s", "7": "s", "free": "xx",
                             "when": "2024-05-01T12:00:00Z"})")));
  CHECK_FALSE(r.validate("other", "x", json::value(3)));
}

TEST_CASE("schema_registry reports each kind of payload error with its pointer") {
  temp_dir dir(test_files);
  const schema_registry r(dir.path);

  SUBCASE("wrong type at the root") {
    auto f = fail(r, json::value(5));
    CHECK(f.pointer == "/payload");
    CHECK(f.detail == "Value type not permitted by 'type' constraint. Got integer.");
  }
  SUBCASE("missing required property: the object lacking it") {
    auto f = fail(r, json::parse(R"({"name": "abc"})"));
    CHECK(f.pointer == "/payload");
    CHECK(f.detail == "Missing required property 'items'.");
  }
  SUBCASE("additionalProperties: the unexpected property") {
    auto f = fail(r, payload_with(R"({"extra": 1})"));
    CHECK(f.pointer == "/payload/extra");
    CHECK(f.detail == "Property 'extra' is not allowed by the schema.");
  }
  SUBCASE("enum") {
    auto f = fail(r, payload_with(R"({"mode": "medium"})"));
    CHECK(f.pointer == "/payload/mode");
    CHECK(f.detail == "Failed to match against any enum values.");
  }
  SUBCASE("minimum, maximum and exclusiveMaximum, with readable numbers") {
    auto low = fail(r, payload_with(R"({"count": 0})"));
    CHECK(low.pointer == "/payload/count");
    CHECK(low.detail == "Expected number greater than or equal to 1");
    auto high = fail(r, payload_with(R"({"count": 11})"));
    CHECK(high.pointer == "/payload/count");
    CHECK(high.detail == "Expected number less than or equal to 10");
    auto ratio = fail(r, payload_with(R"({"ratio": 0.5})"));
    CHECK(ratio.pointer == "/payload/ratio");
    CHECK(ratio.detail == "Expected number less than 0.5");
  }
  SUBCASE("wrong type of a member names the type given") {
    auto f = fail(r, payload_with(R"({"count": 2.5})"));
    CHECK(f.pointer == "/payload/count");
    CHECK(f.detail == "Value type not permitted by 'type' constraint. Got number.");
  }
  SUBCASE("maxLength") {
    auto f = fail(r, payload_with(R"({"name": "abcdef"})"));
    CHECK(f.pointer == "/payload/name");
    CHECK(f.detail == "String should be no more than 5 characters in length.");
  }
  SUBCASE("pattern") {
    auto f = fail(r, payload_with(R"({"name": "ABC"})"));
    CHECK(f.pointer == "/payload/name");
    CHECK(f.detail == "Failed to match regex specified by 'pattern' constraint.");
  }
  SUBCASE("array items: the pointer has the index") {
    auto f = fail(r, payload_with(R"({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"},
                                             {"name": 5}]})"));
    CHECK(f.pointer == "/payload/items/3/name");
    CHECK(f.detail == "Value type not permitted by 'type' constraint. Got integer.");
    auto missing = fail(r, payload_with(R"({"items": [{"name": "a"}, {}]})"));
    CHECK(missing.pointer == "/payload/items/1");
    CHECK(missing.detail == "Missing required property 'name'.");
  }
  SUBCASE("nested objects") {
    auto f = fail(r, payload_with(R"({"nested": {"inner": {"flag": "yes"}}})"));
    CHECK(f.pointer == "/payload/nested/inner/flag");
    CHECK(f.detail == "Value type not permitted by 'type' constraint. Got string.");
  }
  SUBCASE("a key needing ~ and / escaping, and a key that looks like an index") {
    CHECK(fail(r, payload_with(R"({"a/b~c": 1})")).pointer == "/payload/a~1b~0c");
    CHECK(fail(r, payload_with(R"({"7": 1})")).pointer == "/payload/7");
  }
  SUBCASE("the most deeply nested error wins over a shallower one") {
    auto f = fail(r, json::parse(R"({"items": [{"name": 1}]})"));  // also lacks "name"
    CHECK(f.pointer == "/payload/items/0/name");
  }
  SUBCASE("format date-time") {
    auto f = fail(r, payload_with(R"({"when": "yesterday"})"));
    CHECK(f.pointer == "/payload/when");
    CHECK(f.detail == "String should be a valid date-time");
  }
}

TEST_CASE("schema_registry survives long strings against pattern and format") {
  // Unguarded, libstdc++'s std::regex overflows the stack on these.
  temp_dir dir(test_files);
  const schema_registry r(dir.path);
  const std::string long_x(200'000, 'x');
  auto f = fail(r, payload_with(R"({"free": ")" + long_x + R"("})"));
  CHECK(f.pointer == "/payload/free");
  CHECK(f.detail == "String should be no more than 1024 characters in length.");
  const std::string long_digits(200'000, '1');
  CHECK(fail(r, payload_with(R"({"when": ")" + long_digits + R"("})")).pointer == "/payload/when");
  // Up to the limit the pattern is still checked.
  CHECK_FALSE(r.validate("test", "all.kinds",
                         payload_with(R"({"free": ")" + std::string(1024, 'x') + R"("})")));
  // valijson 1.0 alone throws on any format applied to an array or object.
  CHECK(fail(r, payload_with(R"({"when": [1]})")).pointer == "/payload/when");
  CHECK(fail(r, payload_with(R"({"site": {"a": 1}})")).pointer == "/payload/site");
}

TEST_CASE("schema_registry reports an unknown job type") {
  temp_dir dir(test_files);
  const schema_registry r(dir.path);
  const auto p = r.validate("test", "nope", json::object{});
  REQUIRE(p.has_value());
  CHECK(p->status == 400);
  CHECK(p->code == "unknown_job_type");
  CHECK(p->pointer == "/type");
  CHECK(p->detail == "Queue 'test' has no job type 'nope'; known types: all.kinds, b.");
  const auto q = r.validate("nope", "x", json::object{});
  REQUIRE(q.has_value());
  CHECK(q->detail == "Queue 'nope' has no job types.");
}

TEST_CASE("schema_registry fails fast on a bad schema directory, naming the file") {
  const auto throws_naming = [](const std::string& file, const std::string& text) {
    temp_dir dir({{"test.ok.schema.json", "{}"}, {file, text}});
    CHECK_THROWS_WITH_AS(schema_registry(dir.path), doctest::Contains(file.c_str()),
                         std::runtime_error);
  };
  throws_naming("test.json.schema.json", R"({"type": )");
  throws_naming("test.type.schema.json", R"({"type": "strin"})");
  throws_naming("test.minimum.schema.json", R"({"minimum": "one"})");
  throws_naming("test.ref.schema.json", R"({"$ref": "#/definitions/missing"})");
  throws_naming("test.regex.schema.json", R"({"properties": {"a": {"pattern": "("}}})");
  throws_naming("test.draft.schema.json",
                R"({"$schema": "https://json-schema.org/draft/2020-12/schema"})");
  throws_naming("test.pp.schema.json", R"({"patternProperties": {"^a": {}}})");
  throws_naming("noqueue.schema.json", "{}");
  throws_naming("test.array.schema.json", "[]");

  temp_dir empty(std::map<std::string, std::string>{{"README.md", ""}});
  CHECK_THROWS_AS(schema_registry(empty.path), std::runtime_error);
  CHECK_THROWS_AS(schema_registry(empty.path / "missing"), std::runtime_error);
}

TEST_CASE("schema_registry validates concurrently with the same results") {
  temp_dir dir(test_files);
  const schema_registry r(dir.path);
  const std::vector<json::value> payloads{
      payload_with("{}"),
      payload_with(R"({"name": "ABC"})"),
      payload_with(R"({"items": [{"name": "a"}, {"name": 5}]})"),
      payload_with(R"({"a/b~c": 1})"),
      payload_with(R"({"when": "2024-05-01T12:00:00Z", "free": "xxx"})"),
      json::value(5),
  };
  std::vector<std::string> expected;
  for (const auto& p : payloads) {
    auto problem = r.validate("test", "all.kinds", p);
    expected.push_back(problem ? problem->pointer + " " + problem->detail : "valid");
  }
  std::vector<std::vector<std::string>> seen(4);
  std::vector<std::thread> threads;
  for (auto& out : seen) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (const auto& p : payloads) {
          auto problem = r.validate("test", "all.kinds", p);
          out.push_back(problem ? problem->pointer + " " + problem->detail : "valid");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& out : seen) {
    REQUIRE(out.size() == 200 * payloads.size());
    for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == expected[i % payloads.size()]);
  }
}

TEST_CASE("the real schemas/jobs directory loads") {
  const schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  CHECK(r.has_type("email", "send"));
  CHECK(r.has_type("webhooks", "deliver"));
  CHECK_FALSE(r.validate(
      "email", "send",
      json::parse(
          R"({"from": "a@b.example", "to": ["a@b.example"], "subject": "hi", "text": "x"})")));
  CHECK(
      r.validate("email", "send",
                 json::parse(R"({"from": "a@b.example", "to": [], "subject": "hi", "text": "x"})"))
          ->pointer == "/payload/to");
  CHECK_FALSE(r.validate("webhooks", "deliver",
                         json::parse(R"({"url": "https://example.com/hook", "method": "PUT",
                                         "headers": {"x-a": "1"}, "timeout_ms": 500})")));
  CHECK(
      r.validate("webhooks", "deliver", json::parse(R"({"url": "https://a", "headers": {"x": 1}})"))
          ->pointer == "/payload/headers/x");
  // A header value: no control character but tab (RFC 9110).
  for (const char* value : {R"(a\r\nb)", R"(1\u0001x)", R"(a\u007f)", R"(\u001f)"})
    CHECK(r.validate("webhooks", "deliver",
                     json::parse(std::string(R"({"url": "https://a", "headers": {"x-a": ")") +
                                 value + R"("}})"))
              ->pointer == "/payload/headers/x-a");
  CHECK_FALSE(r.validate("webhooks", "deliver",
                         json::parse(R"({"url": "https://a", "headers": {"x-a": "a\tb é ~"}})")));
}

TEST_CASE("a payload problem quotes the schema's description of the place that failed") {
  const schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  auto email = [](std::string_view patch) {
    json::object p = json::parse(
                         R"({"from": "a@b.example", "to": ["a@b.example"], "subject": "hi",
                             "text": "x"})")
                         .as_object();
    auto extra = json::parse(patch);
    for (const auto& [k, v] : extra.as_object()) p[k] = v;
    return json::value(p);
  };
  // The check's own words say what failed; the description says what is taken.
  auto url = r.validate("webhooks", "deliver", json::parse(R"({"url": "ftp://example.com/x"})"));
  REQUIRE(url);
  CHECK(url->pointer == "/payload/url");
  CHECK(url->detail.starts_with("url must be http or https."));
  CHECK(url->detail.find(" Expected: ") != std::string::npos);
  // An array member: the description reached through items, $ref and oneOf.
  auto to = r.validate("email", "send", email(R"({"to": ["b@example.org\r\nRCPT TO:<x@y.z>"]})"));
  REQUIRE(to);
  CHECK(to->pointer == "/payload/to/0");
  CHECK(to->detail.find("Expected: An email address") != std::string::npos);
  // A header name the schema does not take.
  auto bcc = r.validate("email", "send", email(R"({"headers": {"Bcc": "x@y.z"}})"));
  REQUIRE(bcc);
  CHECK(bcc->pointer == "/payload/headers");
  CHECK(bcc->detail.find("Expected: Extra headers (names in any case, each once): "
                         "List-Unsubscribe") != std::string::npos);
  // A structured header: printable ASCII, words that fold into a line.
  CHECK_FALSE(r.validate("email", "send",
                         email(R"({"headers": {"rEfErEnCeS": "<a@b.example>   <)" +
                               std::string(890, 'c') + R"(@d>"}})")));
  // Not ASCII (JSON's escape of é), and a word of 901 characters.
  for (const auto& bad :
       {std::string(R"(<\u00e9@b.example>)"), "<" + std::string(899, 'c') + ">"}) {
    auto refused =
        r.validate("email", "send", email(R"({"headers": {"References": ")" + bad + R"("}})"));
    REQUIRE(refused);
    CHECK(refused->pointer == "/payload/headers/References");
    CHECK_MESSAGE(refused->detail.starts_with("References is a structured field: printable ASCII, "
                                              "and no word (a run without a space) over 900"),
                  refused->detail);
  }
  // The payload itself: the job type's description says what it takes.
  for (auto payload : {R"({"input": "a", "input_base64": "YQ=="})", R"({})"}) {
    CAPTURE(payload);
    auto hash = r.validate("processing", "hash", json::parse(payload));
    REQUIRE(hash);
    CHECK(hash->pointer == "/payload");
    CHECK(
        hash->detail.find(" Expected: Digests up to 1 MiB of input with OpenSSL. Give exactly one "
                          "of input (UTF-8 text) and input_base64 (bytes).") != std::string::npos);
  }
  // An aggregate without the column its op needs: the op's description says so.
  auto sum = r.validate("processing", "csv.aggregate",
                        json::parse(R"({"csv": "a\n1\n", "aggregates": [{"op": "sum"}]})"));
  REQUIRE(sum);
  CHECK(sum->pointer == "/payload/aggregates/0/op");
  CHECK(sum->detail.ends_with(
      "Expected: count, sum, min, max or avg; every op but count needs a column."));
  // ...and never stands in for a member's own.
  auto algorithm =
      r.validate("processing", "hash", json::parse(R"({"input": "a", "algorithm": "x"})"));
  REQUIRE(algorithm);
  CHECK(algorithm->pointer == "/payload/algorithm");
  CHECK(algorithm->detail == "Failed to match against any enum values.");
}

namespace {

using files = std::map<std::string, std::string>;

// A job type as a new one would be written: its members say what they carry,
// with no C++ for the type.
constexpr const char* bytes_schema = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "plain": {"type": "string"},
    "padded": {"type": "string", "contentEncoding": "base64", "description": "Bytes."},
    "loose": {"type": "string", "contentEncoding": "base64", "x-base64-padding": "optional"},
    "strict": {"type": "string", "contentEncoding": "base64", "x-base64-padding": "required"},
    "untyped": {"contentEncoding": "base64"},
    "files": {"type": "array", "items": {"properties": {"data": {"$ref": "#/definitions/bytes"}}}},
    "hook": {"format": "webhook-url"},
    "header": {"type": "string", "maxLength": 4096, "format": "http-field-value"}
  },
  "definitions": {"bytes": {"type": "string", "contentEncoding": "base64"}}
})";

}  // namespace

TEST_CASE(
    "contentEncoding base64 takes what the workers' decoder takes, padding as the schema says") {
  temp_dir dir(files{{"test.bytes.schema.json", bytes_schema}});
  const schema_registry r(dir.path);
  auto ok = [&](std::string_view payload) {
    auto p = r.validate("test", "bytes", json::parse(payload));
    CHECK_MESSAGE(!p, payload, ": ", p ? p->detail : "");
  };
  auto bad = [&](std::string_view payload, std::string_view pointer) {
    auto p = r.validate("test", "bytes", json::parse(payload));
    REQUIRE_MESSAGE(p, payload);
    CHECK(p->code == "payload_invalid");
    CHECK(p->pointer == pointer);
    return p->detail;
  };
  // The keyword alone makes the difference: the same string without it passes.
  ok(R"({"plain": "!!!"})");
  CHECK(bad(R"({"padded": "!!!"})", "/payload/padded") ==
        "String is not standard, padded base64: its length is impossible. Expected: Bytes.");
  // Padding required unless x-base64-padding says optional.
  ok(R"({"padded": "aGk=", "strict": "aA==", "loose": "aGk", "untyped": ""})");
  bad(R"({"padded": "aGk"})", "/payload/padded");
  bad(R"({"strict": "aA"})", "/payload/strict");
  ok(R"({"loose": "aGk="})");
  CHECK(bad(R"({"loose": "a"})", "/payload/loose") ==
        "String is not standard base64: its length is impossible.");
  bad(R"({"loose": "a-b_"})", "/payload/loose");  // base64url is another alphabet
  bad(R"({"padded": "aGk=\n"})", "/payload/padded");
  // Deep in an array, through a $ref: the pointer names the member.
  CHECK(bad(R"({"files": [{"data": "aGk="}, {"data": "aG k"}]})", "/payload/files/1/data") ==
        "String is not standard, padded base64: unexpected character at offset 2.");
  // It says nothing of values that are not strings (the type keyword does).
  ok(R"({"untyped": 5})");
  CHECK(bad(R"({"padded": 5})", "/payload/padded").starts_with("Value type not permitted"));
}

TEST_CASE("format webhook-url takes what the webhooks worker takes") {
  temp_dir dir(files{{"test.bytes.schema.json", bytes_schema}});
  const schema_registry r(dir.path);
  for (const char* url : {"http://example.com:65535/", "https://example.com/h?x=1", "HTTP://a"}) {
    CAPTURE(url);
    CHECK_FALSE(r.validate("test", "bytes", json::value{{"hook", url}}));
  }
  const std::pair<const char*, const char*> refused[] = {
      {"http://127.0.0.1:74435/wrapped",
       "url has a bad port \"74435\": it must be from 1 to 65535."},
      {"http://example.com:0/", "url has a bad port \"0\": it must be from 1 to 65535."},
      {"ftp://example.com/", "url must be http or https."},
      {"https://user:pw@example.com/", "url must not carry user info."},
      {"http://213070640:1:33/", "url has a bad port or path."},
      {"example.com/x", "url is not an absolute URL."},
  };
  for (const auto& [url, why] : refused) {
    CAPTURE(url);
    auto p = r.validate("test", "bytes", json::value{{"hook", url}});
    REQUIRE(p);
    CHECK(p->pointer == "/payload/hook");
    CHECK(p->detail == why);
  }
  CHECK_FALSE(r.validate("test", "bytes", json::parse(R"({"hook": [1]})")));  // not a string
  // A decoded host is a DNS name or nothing: no line break into a Host header.
  auto injected = r.validate("test", "bytes", json::value{{"hook", "http://a%0d%0aX-B:%201/"}});
  REQUIRE(injected);
  CHECK(injected->detail.starts_with("url's host must be a DNS name"));
  // Long URLs are checked whole (no pattern's length guard in the way).
  CHECK_FALSE(r.validate(
      "test", "bytes", json::value{{"hook", "https://example.com/?q=" + std::string(3000, 'x')}}));
}

// (NUL never gets here: a payload's strings are refused with it first, as
// PostgreSQL could not store them.)
TEST_CASE("format http-field-value: no control character but tab, at any length") {
  temp_dir dir(files{{"test.bytes.schema.json", bytes_schema}});
  const schema_registry r(dir.path);
  for (std::string v :
       {std::string("v1, tab\there"), std::string("Grüße"), std::string(4096, 'x')}) {
    CAPTURE(v.size());
    CHECK_FALSE(r.validate("test", "bytes", json::value{{"header", v}}));
  }
  for (std::string v : {std::string("a\r\nb"), std::string("a\nb"), std::string("a\x7f"),
                        std::string(4000, 'x') + "\r"}) {
    CAPTURE(v.size());
    auto p = r.validate("test", "bytes", json::value{{"header", v}});
    REQUIRE(p);
    CHECK(p->pointer == "/payload/header");
    CHECK(p->detail.starts_with("String holds a control character"));
  }
}

TEST_CASE("schema_registry refuses a contentEncoding, padding or format it would not check") {
  const auto throws_saying = [](const std::string& schema, const char* what) {
    temp_dir dir(files{{"test.x.schema.json", schema}});
    CHECK_THROWS_WITH_AS(schema_registry(dir.path), doctest::Contains(what), std::runtime_error);
  };
  throws_saying(R"({"properties": {"a": {"contentEncoding": "quoted-printable"}}})",
                "contentEncoding \"quoted-printable\" is not checked");
  throws_saying(R"({"properties": {"a": {"contentEncoding": "base64url"}}})",
                "contentEncoding \"base64url\" is not checked");
  // What x-base64-padding becomes inside is not a name a schema can use.
  throws_saying(
      R"j({"properties": {"a": {"contentEncoding": "base64 (x-base64-padding: optional)"}}})j",
      "is not checked");
  throws_saying(R"({"properties": {"a": {"x-base64-padding": "optional"}}})",
                "x-base64-padding needs contentEncoding \"base64\"");
  throws_saying(R"({"items": {"contentEncoding": "base64", "x-base64-padding": "sometimes"}})",
                "x-base64-padding must be \"required\" or \"optional\"");
  throws_saying(R"({"properties": {"a": {"format": "webhook_url"}}})",
                "unknown format \"webhook_url\"");
  // A pattern is only tried up to max_regex_input characters: a larger
  // maxLength beside it would refuse strings it allows as "too long".
  throws_saying(R"({"properties": {"a": {"pattern": "^a*$", "maxLength": 2048}}})",
                "a pattern is tried on strings of at most 1024 characters, but maxLength is 2048");
  for (const char* bad : {R"("to")", R"({"of": ["a"]})", R"({"of": [], "maximum": 3})",
                          R"({"of": ["a", 1], "maximum": 3})", R"({"of": ["a"], "maximum": -1})",
                          R"({"of": ["a"], "maximum": 3, "min": 1})"})
    throws_saying(std::string(R"({"x-max-total-items": )") + bad + "}",
                  "x-max-total-items must be");
  throws_saying(
      R"({"items": {"$ref": "#/definitions/d"}, "definitions": {"d": {"format": "ur1"}}})",
      "unknown format \"ur1\"");
  // The draft-07 names load, checked or not by valijson.
  temp_dir known(files{{"test.x.schema.json",
                        R"({"properties": {"a": {"format": "email"}, "b": {"format": "uri"},
                                           "c": {"format": "date"}}})"}});
  CHECK_NOTHROW(schema_registry(known.path));
}

TEST_CASE("email: at most 100 recipients in to, cc and bcc together, as the worker counts") {
  const schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  auto with = [](int to, int cc, int bcc) {
    json::object p{{"from", "a@b.example"}, {"subject", "hi"}, {"text", "x"}};
    auto list = [](const char* prefix, int n) {
      json::array a;
      for (int i = 0; i < n; ++i) a.emplace_back(fmt::format("{}{}@b.example", prefix, i));
      return a;
    };
    p["to"] = list("t", to);
    if (cc) p["cc"] = list("c", cc);
    if (bcc) p["bcc"] = list("b", bcc);
    return json::value(p);
  };
  CHECK_FALSE(r.validate("email", "send", with(100, 0, 0)));
  CHECK_FALSE(r.validate("email", "send", with(40, 30, 30)));
  auto over = r.validate("email", "send", with(50, 0, 51));
  REQUIRE(over);
  CHECK(over->code == "payload_invalid");
  CHECK(over->pointer == "/payload/bcc");
  CHECK(over->detail.starts_with("to, cc, bcc hold 101 items together; at most 100."));
  auto cc = r.validate("email", "send", with(60, 50, 0));
  REQUIRE(cc);
  CHECK(cc->pointer == "/payload/cc");
}

TEST_CASE("email: a header named twice in two cases, a local part over 64: 400, as the worker") {
  const schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  auto email = [](json::object patch) {
    json::object p{{"from", "a@b.example"},
                   {"to", json::array{"a@b.example"}},
                   {"subject", "hi"},
                   {"text", "x"}};
    for (const auto& [k, v] : patch) p[k] = v;
    return json::value(p);
  };
  CHECK_FALSE(r.validate(
      "email", "send", email({{"headers", {{"X-Foo", "a"}, {"X-Bar", "b"}, {"List-Id", "<a>"}}}})));
  for (auto [first, second] : {std::pair{"X-Foo", "x-foo"}, std::pair{"List-Id", "LIST-ID"}}) {
    CAPTURE(second);
    auto twice = r.validate("email", "send", email({{"headers", {{first, "a"}, {second, "b"}}}}));
    REQUIRE(twice);
    CHECK(twice->code == "payload_invalid");
    CHECK(twice->pointer == "/payload/headers");
    CHECK(twice->detail.starts_with(std::string(second) +
                                    " is given twice: names are case-insensitive. Expected: "
                                    "Extra headers (names in any case, each once)"));
  }
  CHECK(r.validate("email", "send",
                   email({{"headers", {{"x-a", "1"}, {"X-B", "2"}, {"x-A", "3"}}}})));

  auto local = [](std::size_t n) { return std::string(n, 'l') + "@example.org"; };
  CHECK_FALSE(r.validate("email", "send", email({{"to", json::array{local(64)}}})));
  auto long_local = r.validate("email", "send", email({{"to", json::array{local(65)}}}));
  REQUIRE(long_local);
  CHECK(long_local->pointer == "/payload/to/0");
  CHECK_FALSE(r.validate("email", "send", email({{"from", local(64)}})));
  CHECK(r.validate("email", "send", email({{"from", local(65)}})));
  CHECK(r.validate("email", "send",
                   email({{"cc", json::array{json::object{{"email", local(70)}}}}})));
}

TEST_CASE("the job types' schemas declare their bytes and URLs") {
  const schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  auto pointer = [&](std::string_view queue, std::string_view type, std::string_view payload) {
    auto p = r.validate(queue, type, json::parse(payload));
    return p ? p->pointer : std::string();
  };
  const std::string mail =
      R"({"from": "a@b.example", "to": ["a@b.example"], "subject": "hi", "text": "x",
          "attachments": [{"filename": "a", "content": "aGk="}, {"filename": "b", "content": )";
  CHECK(pointer("email", "send", mail + R"("aGk="}]})").empty());
  CHECK(pointer("email", "send", mail + R"("aGk"}]})") == "/payload/attachments/1/content");
  CHECK(pointer("processing", "hash", R"({"input_base64": "aGk"})").empty());
  CHECK(pointer("processing", "hash", R"({"input_base64": "aGk=="})") == "/payload/input_base64");
  CHECK(pointer("webhooks", "deliver", R"({"url": "http://example.com:65536/"})") ==
        "/payload/url");
}
