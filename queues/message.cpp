#include "queues/message.hpp"

#include "common/job.hpp"

#include <simdjson.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace jobs {

std::string encode_job_message(const job_message& m) {
  auto q = [](std::string_view s) { return boost::json::serialize(boost::json::string(s)); };
  return "{\"id\":" + q(m.id) + ",\"tenant\":" + q(m.tenant) + ",\"queue\":" + q(m.queue) +
         ",\"type\":" + q(m.type) + (m.trace_id.empty() ? "" : ",\"trace_id\":" + q(m.trace_id)) +
         "}";
}

std::optional<job_message> decode_job_message(std::string_view body, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<job_message> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  // simdjson's DOM parser validates the whole body (trailing content included).
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc)) return fail("body is not one JSON document");
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return fail("body is not a JSON object");
  job_message m;
  for (auto [name, target] :
       {std::pair{"id", &m.id}, {"tenant", &m.tenant}, {"queue", &m.queue}, {"type", &m.type}}) {
    std::string_view v;
    if (obj[name].get_string().get(v)) return fail(std::string("missing string field ") + name);
    *target = std::string(v);
  }
  if (auto t = obj["trace_id"]; !t.error()) {
    std::string_view v;
    if (t.get_string().get(v)) return fail("trace_id is not a string");
    m.trace_id = std::string(v);
  }
  if (!is_uuid(m.id)) return fail("id is not a UUID");
  if (!is_known_queue(m.queue)) return fail("unknown queue " + m.queue);
  return m;
}

}  // namespace jobs
