#include "loadgen.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <memory>

namespace jobs::bench {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;
using boost::system::error_code;

// Counts the jobs of a batch reply that were accepted (each has an id).
int accepted_in(const std::string& reply) {
  int n = 0;
  for (auto at = reply.find(R"("id":")"); at != std::string::npos;
       at = reply.find(R"("id":")", at + 1))
    ++n;
  return n;
}

// One run: every connection, the pacing timer and the tallies live on one
// thread's io_context, so nothing here is shared between threads.
class load_run {
 public:
  explicit load_run(const load_options& o)
      : o_(o),
        per_request_(o.batch > 0 ? o.batch : 1),
        requests_((o.jobs + per_request_ - 1) / per_request_),
        request_rate_(o.rate / per_request_),
        target_(o.batch > 0 ? "/v1/jobs/batch" : "/v1/jobs"),
        timer_(ioc_) {
    out_.accept_ms.reserve(static_cast<std::size_t>(requests_));
    out_.due_ms.reserve(static_cast<std::size_t>(requests_));
    out_.status.reserve(static_cast<std::size_t>(requests_));
    for (int i = 0; i < std::max(1, std::min(o.connections, requests_)); ++i) {
      conns_.push_back(std::make_unique<connection>(ioc_));
      open(*conns_.back());
    }
  }

  load_result run() {
    start_ = clock::now();
    for (auto& c : conns_) idle_.push_back(c.get());
    dispatch();
    ioc_.run();
    // Requests never sent (every connection was lost) are refused too.
    out_.refused += std::max(0, o_.jobs - next_ * per_request_);
    out_.took = clock::now() - start_;
    return std::move(out_);
  }

 private:
  struct connection {
    explicit connection(asio::io_context& ioc) : sock(ioc) {}
    asio::ip::tcp::socket sock;
    boost::beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    clock::time_point due;
    int count = 0;
  };

  void open(connection& c) {
    error_code ignored;
    c.sock.close(ignored);
    c.buf.clear();
    c.sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(o_.port)});
    c.sock.set_option(asio::ip::tcp::no_delay(true));
  }

  clock::time_point due(int k) const {
    return start_ + std::chrono::duration_cast<clock::duration>(
                        std::chrono::duration<double>(k / request_rate_));
  }

  // Sends every request that is due on an idle connection. Closed loop: all
  // are due at once. Open loop: those whose time has come; a request that is
  // due while every connection waits for a reply goes out on the first one
  // answered, its latency still counted from when it was due.
  void dispatch() {
    auto now = clock::now();
    while (next_ < requests_ && !idle_.empty()) {
      auto when = request_rate_ > 0 ? due(next_) : now;
      if (when > now) {
        if (!timer_armed_) {
          timer_armed_ = true;
          timer_.expires_at(when);
          timer_.async_wait([this](error_code) {
            timer_armed_ = false;
            dispatch();
          });
        }
        return;
      }
      auto* c = idle_.back();
      idle_.pop_back();
      send(*c, next_++, when, now);
    }
  }

  void send(connection& c, int k, clock::time_point when, clock::time_point now) {
    if (request_rate_ > 0)
      out_.max_send_lag_ms = std::max(
          out_.max_send_lag_ms, std::chrono::duration<double, std::milli>(now - when).count());
    int first = k * per_request_;
    c.count = std::min(per_request_, o_.jobs - first);
    c.due = when;
    std::string body;
    if (o_.batch > 0) {
      body = R"({"jobs":[)";
      for (int i = 0; i < c.count; ++i) body += (i ? "," : "") + o_.job(first + i);
      body += "]}";
    } else {
      body = o_.job(first);
    }
    c.req = {http::verb::post, target_, 11};
    c.req.set(http::field::host, "127.0.0.1");
    c.req.set(http::field::authorization, "Bearer " + o_.api_key);
    c.req.set(http::field::content_type, "application/json");
    c.req.keep_alive(true);
    c.req.body() = std::move(body);
    c.req.prepare_payload();
    http::async_write(c.sock, c.req, [this, &c](error_code ec, std::size_t) {
      if (ec) return finish(c, 0, ec.message());
      c.res = {};
      http::async_read(c.sock, c.buf, c.res, [this, &c](error_code ec, std::size_t) {
        if (ec) return finish(c, 0, ec.message());
        finish(c, static_cast<int>(c.res.result_int()), std::move(c.res.body()));
      });
    });
  }

  void finish(connection& c, int status, std::string reply) {
    out_.accept_ms.push_back(
        std::chrono::duration<double, std::milli>(clock::now() - c.due).count());
    out_.due_ms.push_back(std::chrono::duration<double, std::milli>(c.due - start_).count());
    out_.status.push_back(status);
    int ok = status == 202 ? (o_.batch > 0 ? accepted_in(reply) : 1) : 0;
    out_.accepted += ok;
    out_.refused += c.count - ok;
    if (ok < c.count && out_.first_refusal.empty())
      out_.first_refusal = (status ? std::to_string(status) + " " : "") + reply.substr(0, 300);
    if (status == 0 || !c.res.keep_alive()) {
      try {
        open(c);
      } catch (const std::exception& e) {
        // The API is gone: this connection's share of the requests is left
        // to the others, and the run ends when they are all answered.
        if (out_.first_refusal.empty()) out_.first_refusal = e.what();
        dispatch();
        return;
      }
    }
    idle_.push_back(&c);
    dispatch();
  }

  const load_options& o_;
  const int per_request_;
  const int requests_;
  const double request_rate_;
  const std::string target_;
  asio::io_context ioc_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::vector<std::unique_ptr<connection>> conns_;
  std::vector<connection*> idle_;
  int next_ = 0;
  clock::time_point start_;
  load_result out_;
};

}  // namespace

load_result run_load(const load_options& o) { return load_run(o).run(); }

}  // namespace jobs::bench
