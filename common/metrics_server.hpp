#pragma once
// A tiny HTTP listener that serves one registry at GET /metrics, for the
// processes that have no HTTP API of their own (workers, the supervisor).
//
//   metrics::registry reg;
//   metrics_server srv({.address = "0.0.0.0", .port = 9464}, reg);  // listening now
//   ... srv.port() ...                                               // the bound port
//   // ~metrics_server / stop(): closes the listener and joins its thread
//
// GET /metrics answers 200 with the text exposition; other paths 404, other
// methods 405. With a `token`, /metrics needs `Authorization: Bearer <token>`
// (401 otherwise). Each request must arrive within `read_timeout` and its
// headers within 8 KiB; bodies are not accepted. Connections are served on
// the listener's one thread (scrapes are rare and render() is fast).
//
// Throws boost::system::system_error when the address cannot be bound.
// Thread-safety: construct and stop from any one thread.

#include "common/metrics.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace jobs {

struct metrics_server_options {
  std::string address = "0.0.0.0";
  int port = 0;       ///< 0: any free port (see port())
  std::string token;  ///< empty: no authentication
  std::chrono::milliseconds read_timeout{5000};
};

class metrics_server {
 public:
  metrics_server(metrics_server_options o, const metrics::registry& reg);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  int port() const { return port_; }
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  int port_ = 0;
};

/// True when `authorization` is "Bearer <token>" (or `token` is empty);
/// compared in constant time.
bool metrics_token_ok(std::string_view authorization, std::string_view token);

}  // namespace jobs
