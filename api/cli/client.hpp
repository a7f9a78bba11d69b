#pragma once
// jobsctl's HTTP/1.1 client: one request at a time on a connection of its
// own (a CLI makes few), Boost.Beast over plain TCP or TLS.
//
// - `https` URLs: the system's CAs plus `ca_file`, certificate and host
//   name verification, SNI, TLS 1.2 at least.
// - Every request has a deadline (`timeout`) for everything: resolving,
//   connecting, the handshake, writing and reading. Replies are read up to
//   `body_limit`.
// - A path in the URL (https://host/jobs) prefixes every target.
//
// Throws connection_error when there is no HTTP answer (exit status 3),
// usage_error for a bad URL or CA file; any HTTP status is a reply, for the
// caller to judge.

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jobs::cli {

struct connection_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct api_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;  ///< prefix without a trailing '/', or ""
};

/// http(s)://host[:port][/path]; throws usage_error otherwise.
api_url parse_api_url(std::string_view url);

struct client_options {
  std::string url = "http://127.0.0.1:8780";
  std::string key;  ///< sent as `Authorization: Bearer`; empty: none
  std::string ca_file;
  std::chrono::milliseconds timeout{30'000};
  std::size_t body_limit = 64 << 20;
};

struct http_reply {
  int status = 0;
  std::string reason;
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case names
};

class api_client {
 public:
  explicit api_client(client_options o);
  /// `method` is "GET", "POST", "DELETE"; `target` starts with '/'. A body
  /// is sent as application/json.
  http_reply request(std::string_view method, std::string_view target, const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {}) const;
  const client_options& options() const { return opts_; }

 private:
  client_options opts_;
  api_url url_;
};

}  // namespace jobs::cli
