#pragma once
// A local HTTP(S) server for the webhook tests: it records every request
// and answers as the request's path asks.
//
//   /ok/...                200
//   /status/N/...          N (e.g. 400, 500)
//   /html/N/...            N with a multi-line HTML error page of about 2.5 KB
//   /bytes/...             200 with a NUL, a malformed byte and 4.2 KB of UTF-8
//   /nul/...               200 with "ok\r\n", a NUL, two malformed bytes and "line2"
//   /fail/N/...            500 for the first N requests to this path, then 200
//   /down/...              503 while set_down(true), else 200
//   /retry-after/S/...     429 with Retry-After: S the first time, then 200
//   /slow/MS/...           200 after MS milliseconds
//   /redirect/...          301 to /ok/redirected (which must never be asked for)
//   /close/...             closes the connection without an answer
//   /chunk-ext/N/...       a chunked 200 whose first size line is N KiB long
//                          (one endless extension), then closes
//
// It listens on 127.0.0.1 (port 0), with TLS when given a certificate and
// key (PEM files). Keep-alive is on. It counts the requests being answered
// at once and the peak of that number.
//
// Thread-safety: one I/O thread; the accessors may be called from any thread.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace jobs::test {

struct sink_request {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::chrono::steady_clock::time_point at;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class webhook_sink {
 public:
  /// Plain HTTP; or HTTPS with `cert_file` and `key_file`.
  explicit webhook_sink(const std::string& cert_file = {}, const std::string& key_file = {});
  ~webhook_sink();
  webhook_sink(const webhook_sink&) = delete;

  int port() const;
  /// "http://127.0.0.1:PORT" (or https).
  std::string base() const;
  std::vector<sink_request> requests() const;
  /// The requests whose target starts with `prefix`.
  std::vector<sink_request> requests(const std::string& prefix) const;
  std::size_t count() const;
  /// Connections accepted so far (the SSRF tests expect none).
  long connections() const;
  int peak_in_flight() const;
  /// Whether /down/... answers 503 (from now on).
  void set_down(bool down);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace jobs::test
