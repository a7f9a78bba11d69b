#pragma once
// The SMTP relay client: sends one message through libcurl's SMTP and MIME
// support, over a small pool of reused connections.
//
// MIME layout (curl_mime): text and html together are a multipart/
// alternative (text first); with attachments the message is multipart/mixed
// with the body first. Text parts are UTF-8, quoted-printable; attachments
// base64. Bcc recipients are in the envelope (RCPT TO) only.
//
// Connections: at most `max_connections` at once (each a curl easy handle
// that keeps its connection open for the next message); a send waits for a
// free one, watching its stop flag. Deadlines: `connect_timeout` for TCP +
// TLS, `timeout` for a whole send. A send that is stopped before the relay
// accepted DATA is abandoned at once; after that it runs to the relay's
// reply (bounded by `timeout`), so a stop never turns a delivery unknown.
//
// TLS: `starttls` requires STARTTLS (the send fails if the relay does not
// offer it), `starttls-optional` uses it when offered, `off` never,
// `implicit` speaks TLS from the first byte (SMTPS, port 465). Certificates
// and host names are verified unless `verify` is false; `ca_file` replaces
// the system's trust store. Credentials (AUTH) only go over TLS.
//
// Thread-safety: send() may be called from any number of threads at once.

#include "workers/email/reply.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace jobs::email {

struct message;

enum class tls_mode { starttls, starttls_optional, off, implicit };

struct relay_options {
  std::string host;  ///< empty: no relay configured, every send fails (retryable)
  int port = 587;
  tls_mode tls = tls_mode::starttls;
  bool verify = true;
  std::string ca_file;
  std::string user, password;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{60000};
  int max_connections = 4;
};

/// "starttls", "starttls-optional", "off", "implicit"; false for other text.
bool parse_tls_mode(const std::string& text, tls_mode& out);

class relay {
 public:
  explicit relay(relay_options o);  ///< initialises libcurl; opens nothing yet
  ~relay();
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  /// Sends `m` with these top-level header lines. `stop` may be null.
  send_outcome send(const message& m, const std::vector<std::string>& headers,
                    const std::atomic<bool>* stop);

  const relay_options& options() const { return opts_; }

 private:
  struct pool;
  relay_options opts_;
  std::unique_ptr<pool> pool_;
};

}  // namespace jobs::email
