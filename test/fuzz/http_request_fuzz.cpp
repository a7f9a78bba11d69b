// Fuzz target: raw bytes as an HTTP request, through what the API does
// before any I/O: Beast's parser under the server's limits, the head checks,
// then the JSON body's strict checks and a job (or batch) submission's
// validation against the real job schemas.
#include "api/batch.hpp"
#include "api/http_limits.hpp"
#include "api/submission.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace http = boost::beast::http;

namespace {

const jobs::schema_registry& schemas() {
  static const jobs::schema_registry r(std::string(JOBS_SOURCE_DIR) + "/schemas/jobs");
  return r;
}

// Every problem carries a 4xx status and a code: the promise clients rely on
// (501 only for a transfer coding the server does not read, RFC 9112 6.1).
void check(const jobs::problem& p) {
  if (p.status == 501 && p.code == "unsupported_transfer_coding") return;
  if (p.status < 400 || p.status > 499 || p.code.empty()) std::abort();
}

}  // namespace

// Compiling the schemas takes seconds under ASan: before the clock starts.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)schemas();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const jobs::submission_limits limits{.max_depth = 32, .max_string = 4096, .max_array = 64};
  const jobs::batch_limits batch{.max_jobs = 16, .max_errors = 4};
  auto now = std::chrono::system_clock::now();

  http::request_parser<http::string_body> parser;
  parser.header_limit(4096);
  parser.body_limit(1 << 16);
  parser.eager(true);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_done() && used < in.size()) {
    auto n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (n == 0 && !ec) break;
    used += n;
  }
  if (ec == http::error::need_more) ec = {};
  if (!ec && !parser.is_done() && parser.got_some()) parser.put_eof(ec);
  if (ec && ec != http::error::need_more) check(jobs::read_problem(ec, 1 << 16));
  if (parser.is_header_done()) {
    if (auto p = jobs::check_request_head(parser.get(), {.url_limit = 256, .max_headers = 16}))
      check(*p);
  }
  if (!parser.is_done()) {
    // Not a whole request: still feed the bytes to the body path alone.
    auto r = jobs::parse_submission(in, schemas(), limits, now);
    if (auto* p = std::get_if<jobs::problem>(&r)) check(*p);
    return 0;
  }
  const auto& req = parser.get();
  const auto& body = req.body();
  auto target = req.target();
  if (target.substr(0, target.find('?')) == "/v1/jobs/batch") {
    auto r = jobs::parse_batch(body, schemas(), limits, batch, now);
    if (auto* p = std::get_if<jobs::problem>(&r)) check(*p);
  } else {
    std::optional<std::string_view> key;
    if (auto it = req.find("Idempotency-Key"); it != req.end()) key = it->value();
    auto r = jobs::parse_submission(body, schemas(), limits, now, key);
    if (auto* p = std::get_if<jobs::problem>(&r)) check(*p);
  }
  return 0;
}
