// Unit tests of POST /v1/jobs body parsing (api/submission.hpp), against the
// real job schemas in schemas/jobs.
#include "api/submission.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <variant>

namespace {

using namespace std::chrono;
using jobs::job_state;

const jobs::schema_registry& registry() {
  static const jobs::schema_registry r(JOBS_SOURCE_DIR "/schemas/jobs");
  return r;
}

// A fixed "now": 2026-06-01T12:00:00Z.
const jobs::sys_time now = sys_days{year{2026} / 6 / 1} + hours{12};

std::variant<jobs::new_job, jobs::problem> parse(std::string_view body, int max_depth = 32) {
  jobs::submission_limits limits;
  limits.max_depth = max_depth;
  return jobs::parse_submission(body, registry(), limits, now);
}

jobs::new_job accepted(std::string_view body) {
  auto r = parse(body);
  if (auto* p = std::get_if<jobs::problem>(&r))
    FAIL("refused " << body << ": " << p->code << " " << p->pointer << " " << p->detail);
  return std::get<jobs::new_job>(r);
}

void check_problem(std::string_view body, const std::string& code, const std::string& pointer,
                   int max_depth = 32) {
  CAPTURE(body);
  auto r = parse(body, max_depth);
  auto* p = std::get_if<jobs::problem>(&r);
  REQUIRE_MESSAGE(p != nullptr, "the body was accepted");
  CHECK(p->status == 400);
  CHECK(p->code == code);
  CHECK(p->pointer == pointer);
  CHECK_FALSE(p->title.empty());
  CHECK_FALSE(p->detail.empty());
}

// Nesting of exactly `depth` levels, counting the body object as level 1:
// {"queue":...,"payload":{"echo":[[...]]}} (the noop type echoes anything).
std::string nested_body(int depth) {
  REQUIRE(depth >= 2);
  std::string echo;
  for (int i = 2; i < depth; ++i) echo += "[";
  for (int i = 2; i < depth; ++i) echo += "]";
  if (echo.empty()) echo = "0";
  return R"({"queue":"processing","type":"noop","payload":{"echo":)" + echo + "}}";
}

}  // namespace

TEST_CASE("a full submission is copied into the job") {
  auto job = accepted(
      R"({"queue":"processing","type":"hash","payload":{"algorithm":"sha256","input":"hi"},)"
      R"("priority":7,"max_attempts":3})");
  CHECK(job.queue == "processing");
  CHECK(job.type == "hash");
  CHECK(boost::json::parse(job.payload_json) ==
        boost::json::parse(R"({"algorithm":"sha256","input":"hi"})"));
  CHECK(job.priority == 7);
  CHECK(job.max_attempts == 3);
  CHECK(job.state == job_state::queued);
  CHECK(job.run_at.empty());
  // The caller fills these in.
  CHECK(job.id.value.empty());
  CHECK(job.tenant.value.empty());
}

TEST_CASE("payload_json is the payload serialized, nested values included") {
  auto job = accepted(R"({"payload":{"echo":{"a":[1,2.5,"x\"y",null,true],"ü":{}}},"type":"noop",)"
                      R"("queue":"processing"})");
  CHECK(boost::json::parse(job.payload_json) ==
        boost::json::parse(R"({"echo":{"a":[1,2.5,"x\"y",null,true],"ü":{}}})"));
  CHECK(job.type == "noop");
}

TEST_CASE(
    "a number without a fraction is an integer, as JSON Schema says; the job gets it as one") {
  auto job = accepted(
      R"({"queue":"processing","type":"noop","payload":{"sleep_ms":5.0,"echo":[2.5,7.0]}})");
  // The handlers read integers: 5.0 is stored as 5 (and, in the same
  // payload, any other integral number).
  CHECK(job.payload_json == R"({"sleep_ms":5,"echo":[2.5E0,7]})");
  auto webhook =
      accepted(R"({"queue":"webhooks","type":"deliver","payload":{"url":"https://example.com/h",)"
               R"("body":{},"timeout_ms":1000.0}})");
  CHECK(boost::json::parse(webhook.payload_json).at("timeout_ms").is_int64());
  // A payload valid as it is stays as it was sent.
  CHECK(accepted(R"({"queue":"processing","type":"noop","payload":{"echo":7.0}})").payload_json ==
        R"({"echo":7E0})");
  check_problem(R"({"queue":"processing","type":"noop","payload":{"sleep_ms":5.5}})",
                "payload_invalid", "/payload/sleep_ms");
  check_problem(R"({"queue":"processing","type":"noop","payload":{"sleep_ms":1e300}})",
                "payload_invalid", "/payload/sleep_ms");
}

TEST_CASE("defaults: priority 0, max_attempts 5, queued now") {
  auto job = accepted(R"({"queue":"processing","type":"noop","payload":{}})");
  CHECK(job.priority == 0);
  CHECK(job.max_attempts == 5);
  CHECK(job.max_attempts == jobs::job_limits::default_max_attempts);
  CHECK(job.state == job_state::queued);
  CHECK(job.run_at.empty());
  CHECK(job.payload_json == "{}");
}

TEST_CASE("the edges of priority and max_attempts are accepted") {
  auto low = accepted(R"({"queue":"processing","type":"noop","payload":{},"priority":-100,)"
                      R"("max_attempts":1})");
  CHECK(low.priority == -100);
  CHECK(low.max_attempts == 1);
  auto high = accepted(R"({"queue":"processing","type":"noop","payload":{},"priority":100,)"
                       R"("max_attempts":100})");
  CHECK(high.priority == 100);
  CHECK(high.max_attempts == 100);
}

TEST_CASE("run_at in the past is queued now, with no run_at") {
  auto job = accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                      R"("run_at":"2026-06-01T11:59:59Z"})");
  CHECK(job.state == job_state::queued);
  CHECK(job.run_at.empty());
  auto old = accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                      R"("run_at":"1999-01-01T00:00:00Z"})");
  CHECK(old.state == job_state::queued);
  CHECK(old.run_at.empty());
}

TEST_CASE("run_at in the future is scheduled at that instant, in UTC") {
  auto job = accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                      R"("run_at":"2026-06-01T12:00:01Z"})");
  CHECK(job.state == job_state::scheduled);
  CHECK(job.run_at == "2026-06-01T12:00:01.000Z");

  auto offset = accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                         R"("run_at":"2030-01-02T08:34:05.25+05:30"})");
  CHECK(offset.state == job_state::scheduled);
  CHECK(offset.run_at == "2030-01-02T03:04:05.250Z");
}

// A far-future run_at must wait (or be refused), never run now: sys_time
// ends in 2262, and parse_rfc3339 accepts years up to 9999.
TEST_CASE("run_at far in the future is never queued to run now") {
  for (std::string run_at :
       {"2300-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    CAPTURE(run_at);
    auto r = parse(std::string(R"({"queue":"processing","type":"noop","payload":{},"run_at":")") +
                   run_at + R"("})");
    if (auto* job = std::get_if<jobs::new_job>(&r)) {
      CHECK(job->state == job_state::scheduled);
      CHECK_FALSE(job->run_at.empty());
    } else {
      auto& p = std::get<jobs::problem>(r);
      CHECK(p.code == "invalid_field");
      CHECK(p.pointer == "/run_at");
    }
  }
}

TEST_CASE("invalid_json: not JSON") {
  for (std::string_view body : {"", "{", "not json", R"({"queue":"processing",})",
                                R"({"queue":"processing"} trailing)", "{'queue':'email'}"}) {
    check_problem(body, "invalid_json", "");
  }
}

TEST_CASE("invalid_utf8: invalid UTF-8 inside a string") {
  check_problem("{\"queue\":\"processing\",\"type\":\"noop\",\"payload\":{\"echo\":\"\xff\xfe\"}}",
                "invalid_utf8", "");
  // A truncated multi-byte sequence, and an overlong encoding of '/'.
  check_problem("{\"queue\":\"email\xe2\x82\"}", "invalid_utf8", "");
  check_problem("{\"queue\":\"\xc0\xaf\"}", "invalid_utf8", "");
}

TEST_CASE("json_too_deep: nesting deeper than the limit") {
  // Exactly at the limit is fine; one level more is refused.
  auto at_limit = parse(nested_body(8), 8);
  CHECK(std::holds_alternative<jobs::new_job>(at_limit));
  check_problem(nested_body(9), "json_too_deep", "", 8);
  check_problem(nested_body(200), "json_too_deep", "", 8);
  // The default limit is 32.
  CHECK(std::holds_alternative<jobs::new_job>(parse(nested_body(32))));
  check_problem(nested_body(33), "json_too_deep", "");
}

TEST_CASE("invalid_request: a body that is not a JSON object") {
  for (std::string_view body :
       {"[]", R"([{"queue":"processing"}])", "42", R"("text")", "null", "true"}) {
    check_problem(body, "invalid_request", "");
  }
}

TEST_CASE("missing_field for each required member") {
  check_problem(R"({"type":"noop","payload":{}})", "missing_field", "/queue");
  check_problem(R"({"queue":"processing","payload":{}})", "missing_field", "/type");
  check_problem(R"({"queue":"processing","type":"noop"})", "missing_field", "/payload");
  check_problem(R"({})", "missing_field", "/queue");
}

TEST_CASE("invalid_field: queue is not a string") {
  check_problem(R"({"queue":5,"type":"noop","payload":{}})", "invalid_field", "/queue");
  check_problem(R"({"queue":["processing"],"type":"noop","payload":{}})", "invalid_field",
                "/queue");
  check_problem(R"({"queue":null,"type":"noop","payload":{}})", "invalid_field", "/queue");
}

TEST_CASE("invalid_field: type empty, too long or not a string") {
  check_problem(R"({"queue":"processing","type":"","payload":{}})", "invalid_field", "/type");
  check_problem(R"({"queue":"processing","type":7,"payload":{}})", "invalid_field", "/type");
  std::string too_long(jobs::job_limits::max_type_length + 1, 'a');
  check_problem(R"({"queue":"processing","type":")" + too_long + R"(","payload":{}})",
                "invalid_field", "/type");
  // At the maximum length the type passes this check and is then unknown.
  std::string longest(jobs::job_limits::max_type_length, 'a');
  check_problem(R"({"queue":"processing","type":")" + longest + R"(","payload":{}})",
                "unknown_job_type", "/type");
}

TEST_CASE("invalid_field: priority out of range or not an integer") {
  for (std::string priority :
       {"101", "-101", "1.5", "\"1\"", "true", "[]", "{}", "9223372036854775807"}) {
    CAPTURE(priority);
    check_problem(std::string(R"({"queue":"processing","type":"noop","payload":{},"priority":)") +
                      priority + "}",
                  "invalid_field", "/priority");
  }
}

TEST_CASE("invalid_field: max_attempts out of range or not an integer") {
  for (std::string attempts : {"0", "-1", "101", "2.5", "\"3\""}) {
    CAPTURE(attempts);
    check_problem(
        std::string(R"({"queue":"processing","type":"noop","payload":{},"max_attempts":)") +
            attempts + "}",
        "invalid_field", "/max_attempts");
  }
}

TEST_CASE("invalid_field: run_at is not an RFC 3339 date-time") {
  for (std::string run_at : {R"("tomorrow")", R"("2026-06-01")", R"("2026-06-01T12:00:00")",
                             R"("2026-13-01T00:00:00Z")", R"("")", "1780000000", "{}"}) {
    CAPTURE(run_at);
    check_problem(
        std::string(R"({"queue":"processing","type":"noop","payload":{},"run_at":)") + run_at + "}",
        "invalid_field", "/run_at");
  }
}

TEST_CASE("unknown_field names the member, escaped as a JSON pointer") {
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"priorty":1})", "unknown_field",
                "/priorty");
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"a/b~c":1})", "unknown_field",
                "/a~1b~0c");
  // Field names are case-sensitive.
  check_problem(R"({"Queue":"processing","type":"noop","payload":{}})", "unknown_field", "/Queue");
}

TEST_CASE("unknown_queue") {
  for (std::string queue : {"reports", "Processing", "", "email "}) {
    CAPTURE(queue);
    check_problem(std::string(R"({"queue":")") + queue + R"(","type":"noop","payload":{}})",
                  "unknown_queue", "/queue");
  }
}

TEST_CASE("unknown_job_type points at /type") {
  check_problem(R"({"queue":"processing","type":"nope","payload":{}})", "unknown_job_type",
                "/type");
  // A type of another queue is unknown in this one.
  check_problem(R"({"queue":"email","type":"hash","payload":{}})", "unknown_job_type", "/type");
}

TEST_CASE("payload_invalid points under /payload") {
  check_problem(R"({"queue":"processing","type":"hash","payload":{"input":5}})", "payload_invalid",
                "/payload/input");
  check_problem(R"({"queue":"processing","type":"noop","payload":{"sleep_ms":-1}})",
                "payload_invalid", "/payload/sleep_ms");
  check_problem(R"({"queue":"processing","type":"noop","payload":{"extra":1}})", "payload_invalid",
                "/payload/extra");
  check_problem(R"({"queue":"processing","type":"noop","payload":[]})", "payload_invalid",
                "/payload");
  check_problem(R"({"queue":"processing","type":"hash","payload":{"algorithm":"sha256"}})",
                "payload_invalid", "/payload");
}

TEST_CASE("a payload missing every branch of an anyOf of required members names them all") {
  const std::string email =
      R"({"queue":"email","type":"send","payload":{"from":"a@example.com","to":["b@example.org"],)"
      R"("subject":"s")";
  auto r = parse(email + "}}");
  REQUIRE(std::holds_alternative<jobs::problem>(r));
  auto p = std::get<jobs::problem>(r);
  CHECK(p.pointer == "/payload");
  CHECK(p.detail.starts_with("Missing required property: at least one of "));
  CHECK(p.detail.find("'text'") != std::string::npos);
  CHECK(p.detail.find("'html'") != std::string::npos);
  accepted(email + R"(,"html":"<p>hi</p>"}})");
  // A plain required member is still named alone.
  r = parse(
      R"({"queue":"email","type":"send","payload":{"to":["b@example.org"],"subject":"s","text":"t"}})");
  REQUIRE(std::holds_alternative<jobs::problem>(r));
  CHECK(std::get<jobs::problem>(r).detail.starts_with("Missing required property 'from'"));
}

TEST_CASE("an email's bad tag or file name says what is allowed") {
  const std::string email =
      R"({"queue":"email","type":"send","payload":{"from":"a@example.com","to":["b@example.org"],)"
      R"("subject":"s","text":"t",)";
  auto detail = [&](const std::string& rest) {
    auto r = parse(email + rest + "}}");
    REQUIRE(std::holds_alternative<jobs::problem>(r));
    return std::get<jobs::problem>(r);
  };
  auto tag = detail(R"("tags":["ok","not ok!"])");
  CHECK(tag.pointer == "/payload/tags/1");
  CHECK(tag.detail.find("A-Z, a-z, 0-9, '.', '_' and '-'") != std::string::npos);
  auto name = detail(R"("attachments":[{"filename":"a\nb","content":""}])");
  CHECK(name.pointer == "/payload/attachments/0/filename");
  CHECK(name.detail.find("no CR or LF") != std::string::npos);
}

TEST_CASE("bytes in base64 are decoded as the worker will: malformed is payload_invalid") {
  const std::string email =
      R"({"queue":"email","type":"send","payload":{"from":"a@example.com","to":["b@example.org"],)"
      R"("subject":"s","text":"t","attachments":[{"filename":"a.txt","content":"aGk="},)";
  accepted(email + R"({"filename":"b","content":""}]}})");
  check_problem(email + R"({"filename":"b","content":"!!!"}]}})", "payload_invalid",
                "/payload/attachments/1/content");
  check_problem(email + R"({"filename":"b","content":"aGk"}]}})", "payload_invalid",
                "/payload/attachments/1/content");  // padding required
  auto r = parse(email + R"({"filename":"b","content":"aG k"}]}})");
  REQUIRE(std::holds_alternative<jobs::problem>(r));
  CHECK(std::get<jobs::problem>(r).detail.starts_with(
      "String is not standard, padded base64: unexpected character at offset 2. Expected: The "
      "bytes in standard, padded base64"));

  accepted(R"({"queue":"processing","type":"hash","payload":{"input_base64":"aGk"}})");
  accepted(R"({"queue":"processing","type":"hash","payload":{"input_base64":"aGk="}})");
  check_problem(R"({"queue":"processing","type":"hash","payload":{"input_base64":"a"}})",
                "payload_invalid", "/payload/input_base64");
  check_problem(R"({"queue":"processing","type":"hash","payload":{"input_base64":"a-b_"}})",
                "payload_invalid", "/payload/input_base64");
}

TEST_CASE("a webhook URL the worker would refuse is payload_invalid at /payload/url") {
  auto hook = [](const std::string& url) {
    return R"({"queue":"webhooks","type":"deliver","payload":{"url":")" + url + R"("}})";
  };
  accepted(hook("http://example.com:65535/"));
  accepted(hook("https://example.com/h?x=1"));
  // Once wrapped modulo 65536: 74435 was delivered to 8899.
  for (const char* url : {"http://127.0.0.1:74435/wrapped", "http://example.com:99999/",
                          "http://example.com:65536/", "http://example.com:0/"}) {
    CAPTURE(url);
    check_problem(hook(url), "payload_invalid", "/payload/url");
    auto r = parse(hook(url));
    REQUIRE(std::holds_alternative<jobs::problem>(r));
    CHECK(std::get<jobs::problem>(r).detail.starts_with("url has a bad port"));
  }
  check_problem(hook("http://213070640:1:33/"), "payload_invalid", "/payload/url");
}

TEST_CASE("U+0000 anywhere in a payload is payload_invalid at its pointer") {
  // PostgreSQL's jsonb cannot store it, and no email header may carry it.
  check_problem(R"({"queue":"processing","type":"hash","payload":{"input":"a\u0000b"}})",
                "payload_invalid", "/payload/input");
  check_problem(R"({"queue":"processing","type":"noop","payload":{"echo":{"k":[1,"\u0000"]}}})",
                "payload_invalid", "/payload/echo/k/1");
  auto r = parse(R"({"queue":"processing","type":"noop","payload":{"echo":{"a/\u0000":1}}})");
  REQUIRE(std::holds_alternative<jobs::problem>(r));
  CHECK(std::get<jobs::problem>(r).pointer == std::string("/payload/echo/a~1\0", 18));
  check_problem(
      R"({"queue":"email","type":"send","payload":{"from":"a@example.com","to":["b@example.org"],"subject":"s\u0000\r\nBcc: x@evil.example","text":"t"}})",
      "payload_invalid", "/payload/subject");
}

TEST_CASE("make_problem fills in the standard title for a code") {
  auto p = jobs::make_problem(400, "missing_field", "queue is required", "/queue");
  CHECK(p.status == 400);
  CHECK(p.code == "missing_field");
  CHECK(p.detail == "queue is required");
  CHECK(p.pointer == "/queue");
  CHECK_FALSE(p.title.empty());
  CHECK(p.title != p.detail);
  auto other = jobs::make_problem(404, "not_found", "x");
  CHECK(other.title != p.title);
  CHECK(other.pointer.empty());
}

TEST_CASE("timeout_ms is optional: absent it is 0, the worker's default") {
  CHECK(accepted(R"({"queue":"processing","type":"noop","payload":{}})").timeout_ms == 0);
  auto job = accepted(R"({"queue":"processing","type":"noop","payload":{},"timeout_ms":2500})");
  CHECK(job.timeout_ms == 2500);
}

TEST_CASE("the edges of timeout_ms are accepted: 1 ms to one day") {
  CHECK(
      accepted(R"({"queue":"processing","type":"noop","payload":{},"timeout_ms":1})").timeout_ms ==
      1);
  CHECK(accepted(R"({"queue":"processing","type":"noop","payload":{},"timeout_ms":86400000})")
            .timeout_ms == jobs::job_limits::max_timeout_ms);
}

TEST_CASE("invalid_field: timeout_ms out of range or not an integer") {
  for (std::string timeout :
       {"0", "-1", "86400001", "9223372036854775807", "1.5", "\"100\"", "null", "true", "[]"}) {
    CAPTURE(timeout);
    check_problem(std::string(R"({"queue":"processing","type":"noop","payload":{},"timeout_ms":)") +
                      timeout + "}",
                  "invalid_field", "/timeout_ms");
  }
}

TEST_CASE("not_cancellable has its own title") {
  auto p = jobs::make_problem(409, "not_cancellable", "the job is already succeeded");
  CHECK(p.status == 409);
  CHECK(p.title != jobs::make_problem(409, "no_such_code", "x").title);
}

namespace {

std::variant<jobs::new_job, jobs::problem> parse_keyed(
    std::string_view body, std::optional<std::string_view> header = std::nullopt) {
  return jobs::parse_submission(body, registry(), {}, now, header);
}

jobs::new_job keyed(std::string_view body, std::optional<std::string_view> header = std::nullopt) {
  auto r = parse_keyed(body, header);
  if (auto* p = std::get_if<jobs::problem>(&r))
    FAIL("refused " << body << ": " << p->code << " " << p->pointer << " " << p->detail);
  return std::get<jobs::new_job>(r);
}

jobs::problem key_problem(std::string_view body,
                          std::optional<std::string_view> header = std::nullopt) {
  CAPTURE(body);
  auto r = parse_keyed(body, header);
  auto* p = std::get_if<jobs::problem>(&r);
  REQUIRE_MESSAGE(p != nullptr, "the submission was accepted");
  CHECK(p->status == 400);
  CHECK(p->code == "invalid_field");
  CHECK_FALSE(p->detail.empty());
  return *p;
}

const std::string noop = R"({"queue":"processing","type":"noop","payload":{}})";

std::string with_key(const std::string& key) {
  return R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":")" + key + "\"}";
}

}  // namespace

TEST_CASE("without an idempotency key the job has neither key nor fingerprint") {
  auto job = keyed(noop);
  CHECK(job.idempotency_key.empty());
  CHECK(job.request_hash.empty());
}

TEST_CASE("idempotency_key in the body is the job's key, with the request's fingerprint") {
  auto job = keyed(with_key("order-1234"));
  CHECK(job.idempotency_key == "order-1234");
  REQUIRE(job.request_hash.size() == 64);
  CHECK(job.request_hash.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("the Idempotency-Key header is the job's key; the same key in both is fine") {
  auto job = keyed(noop, "order-1234");
  CHECK(job.idempotency_key == "order-1234");
  CHECK(job.request_hash.size() == 64);
  auto both = keyed(with_key("order-1234"), "order-1234");
  CHECK(both.idempotency_key == "order-1234");
  // Where the key came from is not part of the request.
  CHECK(both.request_hash == job.request_hash);
}

TEST_CASE("an Idempotency-Key header that differs from idempotency_key is invalid_field") {
  auto p = key_problem(with_key("order-1234"), "order-1235");
  CHECK(p.pointer == "/idempotency_key");
}

TEST_CASE("idempotency keys: 1 to 255 printable ASCII characters") {
  std::string longest(255, 'k');
  CHECK(keyed(with_key(longest)).idempotency_key == longest);
  CHECK(keyed(noop, longest).idempotency_key == longest);
  CHECK(keyed(noop, " !~key with spaces~! ").idempotency_key == " !~key with spaces~! ");
  CHECK(keyed(with_key(R"(a\"b\\c)")).idempotency_key == R"(a"b\c)");

  for (std::string bad :
       {std::string(), std::string(256, 'k'), std::string("tab\there"), std::string("bell\x07"),
        std::string("del\x7f"), std::string("caf\xc3\xa9"), std::string("nul\0x", 5)}) {
    CAPTURE(bad);
    auto header = key_problem(noop, bad);
    CHECK(header.parameter == "Idempotency-Key");
    CHECK(header.pointer.empty());
    // The same in the body (JSON-escaped, so the parser sees these characters).
    auto body = key_problem(std::string(R"({"queue":"processing","type":"noop","payload":{},)") +
                            R"("idempotency_key":)" +
                            boost::json::serialize(boost::json::string(bad)) + "}");
    CHECK(body.pointer == "/idempotency_key");
  }
  for (std::string bad : {"7", "null", "[\"k\"]", "{}", "true"}) {
    CAPTURE(bad);
    auto p = key_problem(
        std::string(R"({"queue":"processing","type":"noop","payload":{},"idempotency_key":)") +
        bad + "}");
    CHECK(p.pointer == "/idempotency_key");
  }
}

TEST_CASE("the request fingerprint: the same request hashes the same, any change differs") {
  auto hash = [](const std::string& body) { return keyed(body, "k").request_hash; };
  const std::string base =
      R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"}})";
  auto h = hash(base);
  // Member order (of the body and the payload), white space and defaults do not matter.
  CHECK(hash(R"({ "payload" : {"algorithm":"sha256", "input":"hi"}, "type":"hash",)"
             R"( "queue":"processing", "priority":0, "max_attempts":5 })") == h);
  CHECK(hash(R"({"queue":"processing","type":"hash","payload":{"input":"hi",)"
             R"("algorithm":"sha256"},"run_at":null})") == h);
  // Neither does the key.
  CHECK(keyed(base, "another key").request_hash == h);

  for (std::string other :
       {R"({"queue":"processing","type":"hash","payload":{"input":"ho","algorithm":"sha256"}})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha512"}})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi"}})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("priority":1})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("max_attempts":4})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("run_at":"2026-06-01T11:00:00Z"})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("timeout_ms":1000})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("delay_ms":1000})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("backoff":{"base_ms":10}})",
        R"({"queue":"processing","type":"hash","payload":{"input":"hi","algorithm":"sha256"},)"
        R"("backoff":{"jitter":"none"}})",
        R"({"queue":"processing","type":"noop","payload":{"echo":{"input":"hi"}}})"}) {
    CAPTURE(other);
    CHECK(hash(other) != h);
  }

  // run_at counts as the instant asked for, even once it is past: a retry
  // an hour later is the same request.
  auto past = hash(R"({"queue":"processing","type":"noop","payload":{},)"
                   R"("run_at":"2026-06-01T11:00:00Z"})");
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{},)"
             R"("run_at":"2026-06-01T13:00:00+02:00"})") == past);
  CHECK(hash(noop) != past);
  // No delay is the request without one.
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":0})") == hash(noop));
  // A delay counts as asked, not as the instant it makes.
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":5000})") ==
        hash(R"({"delay_ms":5000,"queue":"processing","type":"noop","payload":{}})"));
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":5000})") !=
        hash(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":5001})"));
  // Nested objects are compared member by member, arrays in order.
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{"echo":{"a":1,"b":[1,2]}}})") ==
        hash(R"({"queue":"processing","type":"noop","payload":{"echo":{"b":[1,2],"a":1}}})"));
  CHECK(hash(R"({"queue":"processing","type":"noop","payload":{"echo":[1,2]}})") !=
        hash(R"({"queue":"processing","type":"noop","payload":{"echo":[2,1]}})"));
}

TEST_CASE("idempotency_key_reused has its own title") {
  auto p = jobs::make_problem(409, "idempotency_key_reused", "x");
  CHECK(p.title != jobs::make_problem(409, "no_such_code", "x").title);
}

TEST_CASE("delay_ms schedules the job that much later; it excludes run_at") {
  auto job = accepted(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":90000})");
  CHECK(job.state == jobs::job_state::scheduled);
  CHECK(job.run_at == jobs::format_rfc3339(now + std::chrono::seconds(90)));
  auto zero = accepted(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":0})");
  CHECK(zero.state == jobs::job_state::queued);
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":-1})",
                "invalid_field", "/delay_ms");
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"delay_ms":604800001})",
                "invalid_field", "/delay_ms");
  check_problem(
      R"({"queue":"processing","type":"noop","payload":{},"delay_ms":5,"run_at":"2030-01-01T00:00:00Z"})",
      "invalid_field", "/delay_ms");
}

TEST_CASE("backoff overrides the retry policy of one job, member by member") {
  auto job = accepted(
      R"({"queue":"processing","type":"noop","payload":{},"backoff":{"base_ms":250,"cap_ms":8000,"jitter":"equal"}})");
  CHECK(job.backoff_base_ms == 250);
  CHECK(job.backoff_cap_ms == 8000);
  CHECK(job.backoff_jitter == "equal");
  auto plain = accepted(R"({"queue":"processing","type":"noop","payload":{}})");
  CHECK(plain.backoff_base_ms == 0);
  CHECK(plain.backoff_jitter.empty());
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"backoff":3})", "invalid_field",
                "/backoff");
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"backoff":{"base_ms":0}})",
                "invalid_field", "/backoff/base_ms");
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"backoff":{"jitter":"some"}})",
                "invalid_field", "/backoff/jitter");
  check_problem(
      R"({"queue":"processing","type":"noop","payload":{},"backoff":{"base_ms":1000,"cap_ms":10}})",
      "invalid_field", "/backoff/cap_ms");
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"backoff":{"factor":2}})",
                "unknown_field", "/backoff/factor");
  // The one not sent counts at its default (1 s base, 1 h cap).
  check_problem(R"({"queue":"processing","type":"noop","payload":{},"backoff":{"cap_ms":5}})",
                "invalid_field", "/backoff/cap_ms");
  check_problem(
      R"({"queue":"processing","type":"noop","payload":{},"backoff":{"base_ms":3600001}})",
      "invalid_field", "/backoff/base_ms");
  CHECK(accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                 R"("backoff":{"cap_ms":1000}})")
            .backoff_cap_ms == 1000);
  CHECK(accepted(R"({"queue":"processing","type":"noop","payload":{},)"
                 R"("backoff":{"base_ms":3600000}})")
            .backoff_base_ms == 3600000);
}

TEST_CASE("json_number_out_of_range: an integer past 64 bits is never rounded to fit") {
  for (std::string field : {"priority", "timeout_ms", "max_attempts"}) {
    check_problem(R"({"queue":"processing","type":"noop","payload":{},")" + field +
                      R"(":99999999999999999999})",
                  "json_number_out_of_range", "/" + field);
  }
}
