// ctest-labels: dashboard
#include "common/trace.hpp"
#include "queues/message.hpp"

#include <doctest/doctest.h>

#include <regex>

using namespace jobs;

TEST_CASE("traceparent: a valid header gives its trace id, a malformed one nothing") {
  CHECK(trace_id_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
        "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may append fields after a dash.
  CHECK(trace_id_from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x") ==
        "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad :
       {"", "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"})
    CHECK_MESSAGE(!trace_id_from_traceparent(bad), bad);
}

TEST_CASE("new trace ids are 32 hex digits, and make_traceparent round-trips") {
  auto a = new_trace_id(), b = new_trace_id();
  CHECK(std::regex_match(a, std::regex("[0-9a-f]{32}")));
  CHECK(a != b);
  auto header = make_traceparent(a);
  CHECK(trace_id_from_traceparent(header) == a);
}

TEST_CASE("the job message carries the trace id when there is one") {
  job_message m{"01a20186-a36f-7fa4-aba8-185e529e034e", "acme", "processing", "hash",
                "4bf92f3577b34da6a3ce929d0e0e4736"};
  auto body = encode_job_message(m);
  CHECK(body.find(R"("trace_id":"4bf92f3577b34da6a3ce929d0e0e4736")") != std::string::npos);
  auto back = decode_job_message(body);
  REQUIRE(back);
  CHECK(back->trace_id == m.trace_id);
  m.trace_id.clear();
  CHECK(encode_job_message(m).find("trace_id") == std::string::npos);
  CHECK(decode_job_message(encode_job_message(m))->trace_id.empty());
  std::string why;
  CHECK(!decode_job_message(
      R"({"id":"01a20186-a36f-7fa4-aba8-185e529e034e","tenant":"a","queue":"processing","type":"x","trace_id":5})",
      &why));
  CHECK(why == "trace_id is not a string");
}
