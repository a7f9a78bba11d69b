#include "queues/message.hpp"

#include "common/job.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <simdjson.h>

namespace jobs {

std::string encode_job_message(const job_message& m) {
  auto q = [](std::string_view s) { return boost::json::serialize(boost::json::string(s)); };
  return "{\"id\":" + q(m.id) + ",\"tenant\":" + q(m.tenant) + ",\"queue\":" + q(m.queue) +
         ",\"type\":" + q(m.type) + "}";
}

std::optional<job_message> decode_job_message(std::string_view body, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<job_message> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  // simdjson needs SIMDJSON_PADDING readable bytes past the end.
  simdjson::padded_string padded(body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return fail("body is not JSON");
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return fail("body is not a JSON object");
  job_message m;
  std::string* fields[] = {&m.id, &m.tenant, &m.queue, &m.type};
  const char* names[] = {"id", "tenant", "queue", "type"};
  for (int i = 0; i < 4; ++i) {
    std::string_view v;
    if (obj[names[i]].get_string().get(v)) return fail(std::string("missing string field ") + names[i]);
    *fields[i] = std::string(v);
  }
  if (!is_uuid(m.id)) return fail("id is not a UUID");
  if (!is_known_queue(m.queue)) return fail("unknown queue " + m.queue);
  return m;
}

}  // namespace jobs
