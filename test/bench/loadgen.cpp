#include "loadgen.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

namespace jobs::bench {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;

class connection {
 public:
  explicit connection(int port) : sock_(ioc_) { open(port); }

  int post(const std::string& target, const std::string& key, std::string body,
           std::string& reply) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + key);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(sock_, req);
    http::response<http::string_body> res;
    http::read(sock_, buf_, res);
    reply = std::move(res.body());
    if (!res.keep_alive()) reopen();
    return static_cast<int>(res.result_int());
  }

 private:
  void open(int port) {
    sock_.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    sock_.set_option(asio::ip::tcp::no_delay(true));
    port_ = port;
  }
  void reopen() {
    boost::system::error_code ec;
    sock_.close(ec);
    sock_ = asio::ip::tcp::socket(ioc_);
    buf_.clear();
    open(port_);
  }

  asio::io_context ioc_;
  asio::ip::tcp::socket sock_;
  boost::beast::flat_buffer buf_;
  int port_ = 0;
};

// Counts the jobs of a batch reply that were accepted (each has an id).
int accepted_in(const std::string& reply) {
  int n = 0;
  for (auto at = reply.find(R"("id":")"); at != std::string::npos;
       at = reply.find(R"("id":")", at + 1))
    ++n;
  return n;
}

}  // namespace

load_result run_load(const load_options& o) {
  const int per_request = o.batch > 0 ? o.batch : 1;
  const int requests = (o.jobs + per_request - 1) / per_request;
  const std::string target = o.batch > 0 ? "/v1/jobs/batch" : "/v1/jobs";
  std::atomic<int> next{0};
  std::mutex mu;
  load_result total;
  total.accept_ms.reserve(static_cast<std::size_t>(requests));
  const auto start = clock::now();
  const double request_rate = o.rate / per_request;

  auto worker = [&] {
    auto c = std::make_unique<connection>(o.port);
    load_result mine;
    std::string reply;
    for (;;) {
      int k = next.fetch_add(1);
      if (k >= requests) break;
      int first = k * per_request, count = std::min(per_request, o.jobs - first);
      std::string body;
      if (o.batch > 0) {
        body = R"({"jobs":[)";
        for (int i = 0; i < count; ++i) body += (i ? "," : "") + o.job(first + i);
        body += "]}";
      } else {
        body = o.job(first);
      }
      auto due = clock::now();
      if (request_rate > 0) {
        due = start + std::chrono::duration_cast<clock::duration>(
                          std::chrono::duration<double>(k / request_rate));
        std::this_thread::sleep_until(due);
        mine.max_send_lag_ms =
            std::max(mine.max_send_lag_ms,
                     std::chrono::duration<double, std::milli>(clock::now() - due).count());
      }
      int status = 0;
      try {
        status = c->post(target, o.api_key, std::move(body), reply);
      } catch (const std::exception& e) {
        reply = e.what();
        c = std::make_unique<connection>(o.port);
      }
      mine.accept_ms.push_back(
          std::chrono::duration<double, std::milli>(clock::now() - due).count());
      int ok = status == 202 ? (o.batch > 0 ? accepted_in(reply) : 1) : 0;
      mine.accepted += ok;
      mine.refused += count - ok;
      if (ok < count && mine.first_refusal.empty())
        mine.first_refusal = std::to_string(status) + " " + reply.substr(0, 300);
    }
    std::lock_guard lk(mu);
    total.accepted += mine.accepted;
    total.refused += mine.refused;
    if (total.first_refusal.empty()) total.first_refusal = mine.first_refusal;
    total.accept_ms.insert(total.accept_ms.end(), mine.accept_ms.begin(), mine.accept_ms.end());
    total.max_send_lag_ms = std::max(total.max_send_lag_ms, mine.max_send_lag_ms);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, std::min(o.connections, requests)); ++i)
    threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  total.took = clock::now() - start;
  return total;
}

}  // namespace jobs::bench
