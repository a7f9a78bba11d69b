// Unit tests of the job message that travels through RabbitMQ
// (queues/message.hpp).
#include "queues/message.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace {

constexpr const char* valid_id = "01890a5d-ac96-774b-bcce-b302099a8057";

// Decodes `body`, which must be refused, and returns the reason given.
std::string refusal(std::string_view body) {
  CAPTURE(body);
  std::string why;
  auto m = jobs::decode_job_message(body, &why);
  CHECK_FALSE(m.has_value());
  CHECK_FALSE(why.empty());
  return why;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("encode_job_message writes the four fields as a JSON object") {
  auto body = jobs::encode_job_message({valid_id, "acme", "processing", "hash"});
  auto v = boost::json::parse(body);
  REQUIRE(v.is_object());
  const auto& o = v.as_object();
  CHECK(o.size() == 4);
  CHECK(o.at("id") == valid_id);
  CHECK(o.at("tenant") == "acme");
  CHECK(o.at("queue") == "processing");
  CHECK(o.at("type") == "hash");
}

TEST_CASE("encode then decode gives the same message") {
  const jobs::job_message messages[] = {
      {valid_id, "acme", "processing", "hash"},
      {valid_id, "say \"hi\" \\ back", "email", "send"},
      {"01890A5D-AC96-774B-BCCE-B302099A8057", "ünïcødé 日本 🚀", "webhooks", "deliver"},
      {valid_id, "line\nbreak\ttab\x01", "processing", "csv.aggregate"},
      {valid_id, "</script>", "processing", "typ\u00e9 \"x\""},
  };
  for (const auto& m : messages) {
    auto body = jobs::encode_job_message(m);
    CAPTURE(body);
    std::string why;
    auto back = jobs::decode_job_message(body, &why);
    INFO("why: " << why);
    REQUIRE(back.has_value());
    CHECK(back->id == m.id);
    CHECK(back->tenant == m.tenant);
    CHECK(back->queue == m.queue);
    CHECK(back->type == m.type);
  }
}

TEST_CASE("decode accepts the members in any order and without `why`") {
  std::string body = std::string(R"({"type":"hash","queue":"processing","tenant":"t","id":")") +
                     valid_id + R"("})";
  auto m = jobs::decode_job_message(body);
  REQUIRE(m.has_value());
  CHECK(m->id == valid_id);
  CHECK(m->tenant == "t");
  CHECK(m->queue == "processing");
  CHECK(m->type == "hash");
}

TEST_CASE("decode refuses a body that is not JSON") {
  for (std::string_view body : {"", "not json", "{", R"({"id":)"}) {
    auto why = refusal(body);
    CHECK(contains(why, "JSON"));
  }
  // Single quotes are not JSON; the parser may only notice at the first member.
  refusal("{'id':'x'}");
}

TEST_CASE("decode refuses a body with trailing content after the object") {
  std::string body = jobs::encode_job_message({valid_id, "acme", "processing", "hash"});
  refusal(body + " garbage");
  refusal(body + body);
}

TEST_CASE("decode refuses JSON that is not an object") {
  for (std::string_view body : {"[]", R"(["id"])", "42", R"("text")", "null", "true"}) {
    auto why = refusal(body);
    CHECK(contains(why, "object"));
  }
}

TEST_CASE("decode refuses a message with a field missing or not a string") {
  const char* fields[] = {"id", "tenant", "queue", "type"};
  for (std::string missing : fields) {
    CAPTURE(missing);
    boost::json::object o{{"id", valid_id}, {"tenant", "t"}, {"queue", "email"}, {"type", "send"}};
    o.erase(missing);
    auto why = refusal(boost::json::serialize(o));
    CHECK(contains(why, missing));

    o[missing] = 7;  // present but a number
    why = refusal(boost::json::serialize(o));
    CHECK(contains(why, missing));
  }
}

TEST_CASE("decode refuses an id that is not a UUID") {
  for (std::string id :
       {"", "42", "01890a5d-ac96-774b-bcce-b302099a805", "01890a5d-ac96-774b-bcce-b302099a805z"}) {
    CAPTURE(id);
    auto body = jobs::encode_job_message({id, "t", "email", "send"});
    auto why = refusal(body);
    CHECK(contains(why, "UUID"));
  }
}

TEST_CASE("decode refuses an unknown queue and names it") {
  for (std::string queue : {"", "Email", "reports"}) {
    CAPTURE(queue);
    auto body = jobs::encode_job_message({valid_id, "t", queue, "send"});
    auto why = refusal(body);
    CHECK(contains(why, "queue"));
    CHECK(contains(why, queue));
  }
}
