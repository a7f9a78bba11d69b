#pragma once
// The email tests' SMTP server and helpers: test/support/smtp_sink.py
// (aiosmtpd, run with Debian's /usr/bin/python3) on a loopback port chosen at
// run time, storing what it accepts in a directory the test reads.

#include "support/live.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::test {

/// One message as the server stored it.
struct received {
  std::string raw;           ///< the bytes as the server got them
  boost::json::object meta;  ///< envelope, tls, auth, received_at, headers, parts (smtp_sink.py)
  /// A header as Python's email package decodes it; empty when absent.
  std::string header(const std::string& name) const;
};

/// The SMTP server of one test; `args` as smtp_sink.py takes them
/// (--replies 451,drop, --cert/--key, --auth, --implicit-tls).
struct smtp_sink {
  smtp_sink(const scratch& s, const std::string& name, std::vector<std::string> args = {});
  std::filesystem::path dir;
  int port = 0;
  std::unique_ptr<process> proc;
  /// Stored messages in the order they arrived (refused ones are not stored).
  std::vector<received> messages() const;
  /// One "N REPLY" line per end of data the server saw.
  std::vector<std::string> events() const;
};

/// A self-signed certificate for `names` (subjectAltName, e.g.
/// "DNS:localhost,IP:127.0.0.1") made by `openssl req -x509` in `dir`:
/// dir/cert.pem and dir/key.pem.
void make_test_certificate(const std::filesystem::path& dir, const std::string& names);

/// The worker settings for `sink`, in clear (JOBS_SMTP_TLS=off).
std::map<std::string, std::string> relay_env(const smtp_sink& sink);

/// Submits an email.send job (with a short fixed backoff unless `extra`
/// says otherwise); fails the test unless it is accepted. Returns its id.
std::string submit_email(http_client& h, const std::string& key, const std::string& payload,
                         const std::string& extra = R"("backoff":{"base_ms":100,"jitter":"none"})");

/// The job once succeeded, dead or cancelled (fails the test after `timeout`).
boost::json::object wait_final(http_client& h, const std::string& key, const std::string& id,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// The error of the job's attempt `i` (0-based), "" when none.
std::string attempt_error(const boost::json::object& job, std::size_t i);

/// Standard padded base64.
std::string base64(std::string_view in);

}  // namespace jobs::test
