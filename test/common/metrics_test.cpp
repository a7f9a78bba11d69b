// ctest-labels: dashboard
#include "common/metrics.hpp"
#include "common/metrics_server.hpp"
#include "support/live.hpp"
#include "support/prom_text.hpp"

#include <doctest/doctest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <cmath>
#include <thread>

using namespace jobs;
using namespace jobs::test;

TEST_CASE("counters, gauges and histograms render in the text format") {
  metrics::registry reg;
  auto& c =
      reg.add_counter("jobs_done_total", "Jobs done.\nSecond line \\ here", {"queue", "state"});
  c.with({"email", "succeeded"}).inc();
  c.with({"email", "succeeded"}).inc(2);
  c.with({"odd \"q\"\n\\", "dead"}).inc();
  auto& g = reg.add_gauge("jobs_depth", "Depth");
  g.with({}).set(2.5);
  auto& h = reg.add_histogram("jobs_latency_seconds", "Latency", {"route"}, {0.1, 1, 10});
  h.with({"/v1/jobs"}).observe(0.05);
  h.with({"/v1/jobs"}).observe(0.1);  // on a bound: counts in that bucket (le is <=)
  h.with({"/v1/jobs"}).observe(5);
  h.with({"/v1/jobs"}).observe(50);

  auto text = reg.render();
  CHECK(text.find("# HELP jobs_done_total Jobs done.\\nSecond line \\\\ here\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE jobs_done_total counter\n") != std::string::npos);
  CHECK(text.find("jobs_done_total{queue=\"email\",state=\"succeeded\"} 3\n") != std::string::npos);
  CHECK(text.find(R"(jobs_done_total{queue="odd \"q\"\n\\",state="dead"} 1)") != std::string::npos);
  CHECK(text.find("jobs_depth 2.5\n") != std::string::npos);
  CHECK(text.find("jobs_latency_seconds_bucket{route=\"/v1/jobs\",le=\"0.1\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("jobs_latency_seconds_bucket{route=\"/v1/jobs\",le=\"1\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("jobs_latency_seconds_bucket{route=\"/v1/jobs\",le=\"10\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("jobs_latency_seconds_bucket{route=\"/v1/jobs\",le=\"+Inf\"} 4\n") !=
        std::string::npos);
  CHECK(text.find("jobs_latency_seconds_count{route=\"/v1/jobs\"} 4\n") != std::string::npos);

  auto parsed = parse_prom_text(text);
  CHECK(parsed.at("jobs_done_total").type == "counter");
  CHECK(prom_sum(parsed, "jobs_done_total", {{"state", "dead"}}) == 1);
  CHECK(prom_sum(parsed, "jobs_done_total", {{"queue", "odd \"q\"\n\\"}}) == 1);
  CHECK(prom_sum(parsed, "jobs_latency_seconds_sum") == doctest::Approx(55.15));
}

TEST_CASE("bad names, duplicate families and wrong label counts are refused") {
  metrics::registry reg;
  CHECK_THROWS_AS(reg.add_counter("2bad", "x"), std::invalid_argument);
  CHECK_THROWS_AS(reg.add_counter("ok_total", "x", {"bad-label"}), std::invalid_argument);
  CHECK_THROWS_AS(reg.add_histogram("h", "x", {"le"}, {1}), std::invalid_argument);
  CHECK_THROWS_AS(reg.add_histogram("h", "x", {}, {2, 1}), std::invalid_argument);
  auto& c = reg.add_counter("ok_total", "x", {"a"});
  CHECK_THROWS_AS(reg.add_gauge("ok_total", "x"), std::invalid_argument);
  CHECK_THROWS_AS(c.with({"1", "2"}), std::invalid_argument);
}

TEST_CASE("collectors refresh gauges at render; one that throws is skipped") {
  metrics::registry reg;
  auto& g = reg.add_gauge("pool_in_use", "x", {"pool"});
  int calls = 0;
  reg.add_collector([&] { g.with({"reads"}).set(++calls); });
  reg.add_collector([] { throw std::runtime_error("database down"); });
  CHECK(reg.render().find("pool_in_use{pool=\"reads\"} 1\n") != std::string::npos);
  CHECK(reg.render().find("pool_in_use{pool=\"reads\"} 2\n") != std::string::npos);
}

TEST_CASE("concurrent updates are all counted and histograms stay consistent") {
  metrics::registry reg;
  auto& c = reg.add_counter("n_total", "x", {"t"});
  auto& h = reg.add_histogram("d_seconds", "x", {}, metrics::latency_buckets());
  constexpr int threads = 4, per = 20000;
  std::vector<std::thread> ts;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) CHECK_NOTHROW(parse_prom_text(reg.render()));
  });
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        c.with({std::to_string(t % 2)}).inc();
        h.with({}).observe(i % 100 * 0.001);
      }
    });
  for (auto& t : ts) t.join();
  done = true;
  scraper.join();
  auto parsed = parse_prom_text(reg.render());
  CHECK(prom_sum(parsed, "n_total") == threads * per);
  CHECK(prom_sum(parsed, "d_seconds_count") == threads * per);
}

TEST_CASE("the strict parser refuses malformed exposition") {
  CHECK_THROWS(parse_prom_text("x 1\n"));  // no TYPE
  CHECK_THROWS(parse_prom_text("# TYPE x counter\nx{a=\"1} 1\n"));
  CHECK_THROWS(parse_prom_text("# TYPE x counter\nx 1 2 3\n"));
  CHECK_THROWS(parse_prom_text("# TYPE x counter\nx one\n"));
  CHECK_THROWS(
      parse_prom_text("# TYPE x histogram\nx_bucket{le=\"1\"} 2\nx_bucket{le=\"+Inf\"} 1\n"
                      "x_count 1\nx_sum 0\n"));
  CHECK_THROWS(
      parse_prom_text("# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_bucket{le=\"+Inf\"} 2\n"
                      "x_count 3\nx_sum 0\n"));
  CHECK_THROWS(parse_prom_text("# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx 2\n"));
  CHECK_NOTHROW(parse_prom_text("# a comment\n\n# TYPE x gauge\nx{a=\"\\\"\"} -1.5e3\n"));
}

TEST_CASE("metrics_server serves the registry at /metrics, with an optional token") {
  metrics::registry reg;
  reg.add_counter("served_total", "x").with({}).inc(7);
  metrics_server open({.address = "127.0.0.1", .port = 0}, reg);
  http_client h(open.port());
  auto r = h.request(boost::beast::http::verb::get, "/metrics");
  CHECK(r.status == 200);
  CHECK(r.headers["content-type"] == metrics::content_type);
  CHECK(prom_sum(parse_prom_text(r.body), "served_total") == 7);
  CHECK(h.request(boost::beast::http::verb::get, "/other").status == 404);
  CHECK(h.request(boost::beast::http::verb::post, "/metrics").status == 405);

  metrics_server locked({.address = "127.0.0.1", .port = 0, .token = "s3cret"}, reg);
  http_client l(locked.port());
  CHECK(l.request(boost::beast::http::verb::get, "/metrics").status == 401);
  CHECK(
      l.request(boost::beast::http::verb::get, "/metrics", "", {{"Authorization", "Bearer wrong!"}})
          .status == 401);
  CHECK(
      l.request(boost::beast::http::verb::get, "/metrics", "", {{"Authorization", "Bearer s3cret"}})
          .status == 200);
}

TEST_CASE("metrics_server reads no body: a chunked one is refused before it is read") {
  // One chunk size line without end once grew its buffer by 200 MB a second.
  metrics::registry reg;
  metrics_server server({.address = "127.0.0.1", .port = 0}, reg);
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket sock(ioc);
  sock.connect(
      {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
  std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                    std::string(100, 'a');  // before, the server waited for the line's end
  boost::system::error_code ec;
  boost::asio::write(sock, boost::asio::buffer(req), ec);
  std::string answer(64, '\0');
  auto n = sock.read_some(boost::asio::buffer(answer), ec);
  answer.resize(ec ? 0 : n);
  CHECK(answer.starts_with("HTTP/1.1 400"));
}

TEST_CASE("a port in use: the error names the address and the port") {
  metrics::registry reg;
  metrics_server first({.address = "127.0.0.1", .port = 0}, reg);
  auto port = first.port();
  std::string what;
  try {
    metrics_server second({.address = "127.0.0.1", .port = port}, reg);
  } catch (const std::exception& e) {
    what = e.what();
  }
  CHECK(what == "cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}
