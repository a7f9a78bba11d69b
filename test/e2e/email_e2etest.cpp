// ctest-labels: email
// The email worker against a real SMTP server (test/support/smtp_sink.hpp):
// what arrives, byte for byte and as Python's email package reads it;
// TLS; and a worker without a relay. The relay's replies, header injection,
// concurrency and the throttle: email_relay_e2etest.cpp.
#include "support/live.hpp"
#include "support/smtp_sink.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>

#include <csignal>
#include <filesystem>
#include <set>

using namespace jobs::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

TEST_CASE("a message with text, html, attachments, UTF-8 names and Bcc arrives as sent") {
  scratch s;
  smtp_sink sink(s, "full");
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);

  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  const std::string subject =
      "Grüße aus Köln — 価格表 2026, a subject long enough to be folded "
      "over more than one encoded-word";
  const std::string payload = R"({
    "from": {"email": "billing@example.com", "name": "Zoë’s Shop"},
    "to": ["ada@example.org", {"email": "bob@example.net", "name": "Bob \"B\" Smith"}],
    "cc": ["carol@example.org"], "bcc": ["audit@example.com"],
    "reply_to": "help@example.com",
    "subject": ")" + subject + R"(",
    "text": "Hello Ada,\nyour invoice is attached.\n", "html": "<p>Hello <b>Ada</b></p>",
    "headers": {"List-Unsubscribe": "<mailto:unsubscribe@example.com>", "X-Campaign": "nov"},
    "attachments": [
      {"filename": "invoice.bin", "content_type": "application/octet-stream", "content": ")" +
                              base64(binary) + R"("},
      {"filename": "résumé.txt", "content_type": "text/plain", "content": ")" +
                              base64("plain text\r\n") + R"("}],
    "tags": ["invoice"]})";
  auto id = submit_email(h, key, payload);
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));

  auto result = job.at("result").as_object();
  const std::string mid = "<" + id + "@example.com>";
  CHECK(result.at("message_id") == mid.c_str());
  CHECK(result.at("reply").at("code") == 250);
  CHECK(std::string(result.at("reply").at("text").as_string()).find("queued as sink-0") !=
        std::string::npos);
  CHECK(result.at("accepted").as_array().size() == 4);

  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  const auto& m = got[0];
  // The envelope has every recipient, Bcc included; the headers do not.
  CHECK(m.meta.at("mail_from") == "billing@example.com");
  std::set<std::string> rcpts;
  for (const auto& r : m.meta.at("rcpt_tos").as_array()) rcpts.insert(std::string(r.as_string()));
  CHECK(rcpts == std::set<std::string>{"ada@example.org", "bob@example.net", "carol@example.org",
                                       "audit@example.com"});
  CHECK(m.raw.find("audit@example.com") == std::string::npos);
  CHECK(m.raw.find("Bcc:") == std::string::npos);
  // Raw header bytes.
  CHECK(m.raw.find("\r\nMessage-ID: " + mid + "\r\n") != std::string::npos);
  CHECK(m.raw.find("\r\nSubject: =?UTF-8?B?") != std::string::npos);
  CHECK(m.raw.find("\r\nList-Unsubscribe: <mailto:unsubscribe@example.com>\r\n") !=
        std::string::npos);
  CHECK(m.raw.find("\r\nX-Tags: invoice\r\n") != std::string::npos);
  // Decoded by Python's email package.
  CHECK(m.header("Subject") == subject);
  CHECK(m.header("From") == "Zoë’s Shop <billing@example.com>");
  CHECK(m.header("To") == "ada@example.org, \"Bob \\\"B\\\" Smith\" <bob@example.net>");
  CHECK(m.header("Cc") == "carol@example.org");
  CHECK(m.header("Reply-To") == "help@example.com");
  CHECK(m.header("Message-ID") == mid);
  CHECK(m.header("X-Campaign") == "nov");
  CHECK(!m.header("Date").empty());
  CHECK(m.header("Bcc").empty());
  // mixed( alternative(text, html), invoice.bin, résumé.txt )
  const auto& parts = m.meta.at("parts").as_array();
  REQUIRE(parts.size() == 6);
  auto part = [&](std::size_t i, const char* field) { return parts[i].at(field); };
  CHECK(part(0, "type") == "multipart/mixed");
  CHECK(part(1, "type") == "multipart/alternative");
  CHECK(part(2, "type") == "text/plain");
  CHECK(part(2, "charset") == "utf-8");
  CHECK(part(2, "content_b64") == base64("Hello Ada,\r\nyour invoice is attached.\r\n").c_str());
  CHECK(part(3, "type") == "text/html");
  CHECK(part(3, "content_b64") == base64("<p>Hello <b>Ada</b></p>").c_str());
  CHECK(part(4, "filename") == "invoice.bin");
  CHECK(part(4, "disposition") == "attachment");
  CHECK(part(4, "content_b64") == base64(binary).c_str());
  CHECK(part(5, "filename") == "résumé.txt");
  CHECK(part(5, "content_b64") == base64("plain text\r\n").c_str());

  // text + html alone: the whole message is multipart/alternative.
  auto id2 = submit_email(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"alt",
    "text":"t","html":"<i>h</i>"})");
  REQUIRE(wait_final(h, key, id2).at("state") == "succeeded");
  got = sink.messages();
  REQUIRE(got.size() == 2);
  const auto& alt = got[1].meta.at("parts").as_array();
  REQUIRE(alt.size() == 3);
  CHECK(alt[0].at("type") == "multipart/alternative");
  CHECK(alt[1].at("type") == "text/plain");
  CHECK(alt[2].at("type") == "text/html");

  // The longest values the schema takes reach a relay that refuses lines
  // over 998 (aiosmtpd: "500 Line too long"): 998 characters of words, 600
  // é (1,200 bytes: characters are counted, not bytes), 998 without a space.
  std::string words;
  while (words.size() < 998) words += "word" + std::to_string(words.size()) + " ";
  words.resize(998);
  while (words.back() == ' ') words.back() = 'w';  // Python's reader trims the end
  std::string e600;
  for (int i = 0; i < 600; ++i) e600 += "é";
  const std::string run(998, 'v');
  for (const auto& [subject, value] :
       {std::pair{words, run}, std::pair{e600, e600}, std::pair{run, words}}) {
    auto id3 =
        submit_email(h, key,
                     R"({"from":"a@example.com","to":["b@example.org"],"subject":")" + subject +
                         R"(","text":"t","headers":{"X-Long":")" + value + R"("}})");
    auto j3 = wait_final(h, key, id3);
    REQUIRE_MESSAGE(j3.at("state") == "succeeded", json::serialize(j3));
    got = sink.messages();
    CHECK(got.back().header("Subject") == subject);
    CHECK(got.back().header("X-Long") == value);
  }
  // And the longest file name, 255 characters of two bytes each: RFC 2231
  // continuations (it went out as one line of 1,580 characters).
  auto id4 =
      submit_email(h, key,
                   R"({"from":"a@example.com","to":["b@example.org"],"subject":"file","text":"t",
    "attachments":[{"filename":")" +
                       e600.substr(0, 510) + R"(","content":")" + base64("x") + R"("}]})");
  auto j4 = wait_final(h, key, id4);
  REQUIRE_MESSAGE(j4.at("state") == "succeeded", json::serialize(j4));
  got = sink.messages();
  const auto& file_parts = got.back().meta.at("parts").as_array();
  REQUIRE(file_parts.size() == 3);
  CHECK(file_parts[2].at("filename") == e600.substr(0, 510).c_str());
}

TEST_CASE("STARTTLS with a certificate made for the test, AUTH, and verification on by default") {
  scratch s;
  fs::path certs = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / "certs";
  make_test_certificate(certs, "DNS:localhost,IP:127.0.0.1");
  const auto cert = (certs / "cert.pem").string();
  smtp_sink sink(
      s, "tls", {"--cert", cert, "--key", (certs / "key.pem").string(), "--auth", "mailer:s3cret"});
  auto env = relay_env(sink);
  env["JOBS_SMTP_TLS"] = "starttls";
  env["JOBS_SMTP_CA_FILE"] = cert;
  env["JOBS_SMTP_USER"] = "mailer";
  env["JOBS_SMTP_PASSWORD"] = "s3cret";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  const std::string msg =
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"over TLS","text":"secret"})";

  auto id = submit_email(h, key, msg);
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0].meta.at("tls") == true);
  CHECK(got[0].meta.at("auth") == "mailer");

  // The same relay without the test CA: the certificate is not trusted, nothing is sent.
  p.workers.front()->signal(SIGTERM);
  REQUIRE(p.workers.front()->wait(20s) == 0);
  p.env.erase("JOBS_SMTP_CA_FILE");
  p.add_worker("email");
  auto id2 = submit_email(h, key, msg, R"("max_attempts":1)");
  auto job2 = wait_final(h, key, id2);
  CHECK(job2.at("state") == "dead");
  CHECK_MESSAGE(attempt_error(job2, 0).find("SSL") != std::string::npos, attempt_error(job2, 0));
  CHECK(sink.messages().size() == 1);
}

TEST_CASE("implicit TLS (SMTPS)") {
  scratch s;
  fs::path certs = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / "certs";
  make_test_certificate(certs, "DNS:localhost");
  smtp_sink sink(s, "smtps",
                 {"--cert", (certs / "cert.pem").string(), "--key", (certs / "key.pem").string(),
                  "--implicit-tls"});
  auto env = relay_env(sink);
  env["JOBS_SMTP_HOST"] = "localhost";  // the certificate's name
  env["JOBS_SMTP_TLS"] = "implicit";
  env["JOBS_SMTP_CA_FILE"] = (certs / "cert.pem").string();
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"smtps","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0].meta.at("tls") == true);
}

TEST_CASE("STARTTLS required and not offered: nothing is sent in clear; optional: clear or TLS") {
  scratch s;
  smtp_sink sink(s, "plain");
  auto env = relay_env(sink);
  env["JOBS_SMTP_TLS"] = "starttls";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})",
      R"("max_attempts":1)");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  auto error = attempt_error(job, 0);
  bool says_tls =
      error.find("STARTTLS") != std::string::npos || error.find("SSL") != std::string::npos;
  CHECK_MESSAGE(says_tls, error);
  CHECK(sink.messages().empty());
  CHECK(sink.events().empty());

  // starttls-optional: in clear to this relay, over TLS to one that offers it.
  p.workers.front()->signal(SIGTERM);
  REQUIRE(p.workers.front()->wait(20s) == 0);
  const std::string msg =
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})";
  p.add_worker("email", {{"JOBS_SMTP_TLS", "starttls-optional"}});
  REQUIRE(wait_final(h, key, submit_email(h, key, msg)).at("state") == "succeeded");
  REQUIRE(sink.messages().size() == 1);
  CHECK(sink.messages()[0].meta.at("tls") == false);
  p.workers.back()->signal(SIGTERM);
  REQUIRE(p.workers.back()->wait(20s) == 0);
  fs::path certs = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / "certs";
  make_test_certificate(certs, "IP:127.0.0.1");
  smtp_sink tls_sink(
      s, "tls", {"--cert", (certs / "cert.pem").string(), "--key", (certs / "key.pem").string()});
  p.add_worker("email", {{"JOBS_SMTP_TLS", "starttls-optional"},
                         {"JOBS_SMTP_PORT", std::to_string(tls_sink.port)},
                         {"JOBS_SMTP_CA_FILE", (certs / "cert.pem").string()}});
  REQUIRE(wait_final(h, key, submit_email(h, key, msg)).at("state") == "succeeded");
  REQUIRE(tls_sink.messages().size() == 1);
  CHECK(tls_sink.messages()[0].meta.at("tls") == true);
}

TEST_CASE("without a relay the worker runs and fails email jobs clearly") {
  scratch s;
  platform p(s, {"email"});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id = submit_email(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})",
      R"("max_attempts":1)");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  CHECK(attempt_error(job, 0) == "no SMTP relay configured (set JOBS_SMTP_HOST)");
}
