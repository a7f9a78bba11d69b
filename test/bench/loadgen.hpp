#pragma once
// The benchmark's load generator: POSTs jobs to the API over keep-alive
// HTTP/1.1 connections (Beast), all driven asynchronously by one thread, so
// that the generator's own CPU (it shares the machine with the platform) is
// a few microseconds a request rather than a thread wake per request.
//
// Closed loop (rate 0): every connection sends its next request as soon as
// the last one is answered, as fast as the API accepts.
// Open loop (rate > 0): request k is due at start + k / request_rate, whether
// or not earlier ones were answered; its latency counts from when it was
// due, not from when a connection was free to send it, so a slow server
// cannot hide its queueing (no coordinated omission). `connections` must be
// enough to keep up with the rate; the report says how late sends were.
//
// Thread-safety: run() from one thread.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace jobs::bench {

struct load_options {
  int port = 0;
  std::string api_key;
  int jobs = 10000;  ///< in all
  int batch = 0;     ///< 0: POST /v1/jobs; n: POST /v1/jobs/batch with n jobs a request
  int connections = 16;
  double rate = 0;  ///< jobs per second, open loop; 0: closed loop
  /// The body of submission `i` (one job's JSON).
  std::function<std::string(int i)> job;
};

struct load_result {
  int accepted = 0;  ///< jobs answered 202
  int refused = 0;   ///< jobs answered otherwise (counted, never retried)
  std::string first_refusal;
  std::vector<double> accept_ms;  ///< one per request, in the order answered
  std::vector<double> due_ms;     ///< when each of them was due (sent, closed loop), from the start
  std::vector<int> status;        ///< each one's HTTP status; 0: the connection failed
  std::chrono::steady_clock::duration took{};
  double max_send_lag_ms = 0;  ///< open loop: how late the latest request left
};

load_result run_load(const load_options& o);

}  // namespace jobs::bench
