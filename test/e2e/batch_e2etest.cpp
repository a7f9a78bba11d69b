// POST /v1/jobs/batch end to end: the API and a worker as processes, many
// jobs in one request, each recorded, published and run like a single one.
#include "support/live.hpp"
#include "support/openapi.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>

#include <set>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::string batch_of(int n, const std::string& input_prefix, std::size_t pad = 0) {
  std::string body = R"({"jobs":[)";
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += fmt::format(R"({{"queue":"processing","type":"hash","payload":{{"input":"{}-{}{}"}}}})",
                        input_prefix, i, std::string(pad, 'x'));
  }
  return body + "]}";
}

// The status of a POST announcing `length` bytes of body, of which it sends
// a few: a raw socket, so the client doesn't fail writing a body the server
// no longer reads.
int status_for_length(int port, const std::string& key, const std::string& target,
                      std::size_t length) {
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  auto head = fmt::format(
      "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
      "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"jobs\":[",
      target, key, length);
  asio::write(sock, asio::buffer(head));
  boost::beast::flat_buffer buf;
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(sock, buf, res);
  if (res.result_int() == 413) CHECK(boost::json::parse(res.body()).at("code") == "body_too_large");
  return static_cast<int>(res.result_int());
}

}  // namespace

TEST_CASE("a batch of 1,000 jobs is accepted in order, and every job runs once") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  openapi_contract contract;

  auto r = h.post_json("/v1/jobs/batch", batch_of(1000, "b"), key);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  auto doc = r.json();
  auto v = contract.violations("BatchAccepted", doc);
  CHECK_MESSAGE(v.empty(), (v.empty() ? "" : v.front()));
  const auto& list = doc.at("jobs").as_array();
  REQUIRE(list.size() == 1000);
  std::set<std::string> ids;
  for (const auto& item : list) ids.insert(std::string(item.at("id").as_string()));
  CHECK(ids.size() == 1000);

  // Recorded as sent, in order: the i-th id carries the i-th input.
  for (int i : {0, 499, 999}) {
    auto id = std::string(list[static_cast<std::size_t>(i)].at("id").as_string());
    CHECK(count(s.pg_url, fmt::format("SELECT count(*) FROM jobs WHERE id = '{}' AND "
                                      "payload->>'input' = 'b-{}' AND tenant_id = 'acme'",
                                      id, i)) == 1);
  }
  REQUIRE(wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 1000;
      },
      60s));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
}

TEST_CASE("a batch may be larger than a single request's body limit, up to its own") {
  scratch s;
  platform p(s, {"processing"},
             {{"JOBS_HTTP_BODY_LIMIT", "65536"}, {"JOBS_HTTP_BATCH_BODY_LIMIT", "1048576"}});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  // 200 jobs of ~1 KiB: over the single-job limit, within the batch limit.
  auto big = batch_of(200, "big", 1000);
  REQUIRE(big.size() > 65536);
  auto r = h.post_json("/v1/jobs/batch", big, key);
  REQUIRE_MESSAGE(r.status == 202, r.body);

  // Over the limit: 413 as soon as the headers say so.
  CHECK(status_for_length(p.port, key, "/v1/jobs", big.size()) == 413);
  CHECK(status_for_length(p.port, key, "/v1/jobs/batch", (1 << 20) + 1) == 413);
  CHECK(status_for_length(p.port, key, "/v1/jobs/batch?x=1", (1 << 20) + 1) == 413);
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 200);
}

TEST_CASE("an invalid member keeps the whole batch out, and the platform carries on") {
  scratch s;
  platform p(s);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  auto body = batch_of(10, "ok");
  body.replace(body.find(R"("input":"ok-7")"), 14, R"("input":7     )");
  auto r = h.post_json("/v1/jobs/batch", body, key);
  CHECK(r.status == 400);
  CHECK(r.json().at("code") == "batch_invalid");
  CHECK(r.json().at("errors").at(0).at("pointer") == "/jobs/7/payload/input");
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 0);

  auto ok = h.post_json("/v1/jobs/batch", batch_of(10, "ok"), key);
  CHECK(ok.status == 202);
}
