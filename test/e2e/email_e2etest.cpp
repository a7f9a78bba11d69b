// ctest-labels: email
// The email worker against a real SMTP server: aiosmtpd (test/support/
// smtp_sink.py) on a loopback port, storing what it receives. The tests
// assert on the bytes that arrived and on Python's email package's reading
// of them, not on what the worker says it sent.
#include "common/db.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string b64(std::string_view in) {
  static constexpr std::string_view a =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v =
        (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += a[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v =
        (unsigned char)in[i] << 16 | (i + 1 < in.size() ? (unsigned char)in[i + 1] << 8 : 0);
    out += a[v >> 18 & 63];
    out += a[v >> 12 & 63];
    out += i + 1 < in.size() ? a[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

struct received {
  std::string raw;  ///< the bytes as the server got them
  json::object meta;
  std::string header(const std::string& name) const {
    for (const auto& h : meta.at("headers").as_array())
      if (h.as_array()[0].as_string() == name) return std::string(h.as_array()[1].as_string());
    return {};
  }
};

// The SMTP server of one test, with its scripted replies.
struct smtp_sink {
  fs::path dir;
  int port = free_port();
  std::unique_ptr<process> proc;

  smtp_sink(const scratch& s, const std::string& name, std::vector<std::string> args = {}) {
    dir = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / ("smtp-" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<std::string> argv{std::string(JOBS_SOURCE_DIR) + "/test/support/smtp_sink.py",
                                  "--port", std::to_string(port), "--dir", dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = std::make_unique<process>("/usr/bin/python3", argv, std::map<std::string, std::string>{},
                                     (dir / "sink.log").string());
    REQUIRE_MESSAGE(wait_until([&] { return fs::exists(dir / "ready"); }, 15s),
                    "the SMTP sink did not start; see ", (dir / "sink.log").string());
  }
  // Stored messages in the order they arrived (refused ones have no file).
  std::vector<received> messages() const {
    std::vector<received> out;
    const auto n = events().size();
    for (std::size_t i = 0; i < n; ++i) {
      auto json_file = dir / fmt::format("msg-{}.json", i);
      if (!fs::exists(json_file)) continue;
      out.push_back({read_file(dir / fmt::format("msg-{}.eml", i)),
                     json::parse(read_file(json_file)).as_object()});
    }
    return out;
  }
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    std::ifstream in(dir / "events.log");
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
};

std::map<std::string, std::string> relay_env(const smtp_sink& sink) {
  return {{"JOBS_SMTP_HOST", "127.0.0.1"},
          {"JOBS_SMTP_PORT", std::to_string(sink.port)},
          {"JOBS_SMTP_TLS", "off"}};
}

std::string submit(http_client& h, const std::string& key, const std::string& payload,
                   const std::string& extra = R"("backoff":{"base_ms":100,"jitter":"none"})") {
  auto r = h.post_json(
      "/v1/jobs", R"({"queue":"email","type":"send",)" + extra + R"(,"payload":)" + payload + "}",
      key);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return std::string(r.json().at("id").as_string());
}

json::object wait_final(http_client& h, const std::string& key, const std::string& id,
                        std::chrono::milliseconds timeout = 30s) {
  json::object job;
  bool done = wait_until(
      [&] {
        job = h.get("/v1/jobs/" + id, key).json().as_object();
        auto st = job.at("state").as_string();
        return st == "succeeded" || st == "dead" || st == "cancelled";
      },
      timeout);
  REQUIRE_MESSAGE(done, "job ", id, " not finished: ", json::serialize(job));
  return job;
}

std::string attempt_error(const json::object& job, std::size_t i) {
  const auto& a = job.at("attempt_history").as_array().at(i).as_object();
  return a.at("error").is_string() ? std::string(a.at("error").as_string()) : std::string();
}

}  // namespace

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
                              b64(binary) + R"("},
      {"filename": "résumé.txt", "content_type": "text/plain", "content": ")" +
                              b64("plain text\r\n") + R"("}],
    "tags": ["invoice"]})";
  auto id = submit(h, key, payload);
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
  CHECK(part(2, "content_b64") == b64("Hello Ada,\r\nyour invoice is attached.\r\n").c_str());
  CHECK(part(3, "type") == "text/html");
  CHECK(part(3, "content_b64") == b64("<p>Hello <b>Ada</b></p>").c_str());
  CHECK(part(4, "filename") == "invoice.bin");
  CHECK(part(4, "disposition") == "attachment");
  CHECK(part(4, "content_b64") == b64(binary).c_str());
  CHECK(part(5, "filename") == "résumé.txt");
  CHECK(part(5, "content_b64") == b64("plain text\r\n").c_str());

  // text + html alone: the whole message is multipart/alternative.
  auto id2 = submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"alt",
    "text":"t","html":"<i>h</i>"})");
  REQUIRE(wait_final(h, key, id2).at("state") == "succeeded");
  got = sink.messages();
  REQUIRE(got.size() == 2);
  const auto& alt = got[1].meta.at("parts").as_array();
  REQUIRE(alt.size() == 3);
  CHECK(alt[0].at("type") == "multipart/alternative");
  CHECK(alt[1].at("type") == "text/plain");
  CHECK(alt[2].at("type") == "text/html");
}

TEST_CASE("STARTTLS with a certificate made for the test, AUTH, and verification on by default") {
  scratch s;
  fs::path certs = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / "certs";
  fs::create_directories(certs);
  auto cmd = fmt::format(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout {0}/key.pem -out {0}/cert.pem "
      "> {0}/openssl.log 2>&1",
      certs.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
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

  auto id = submit(h, key, msg);
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
  auto id2 = submit(h, key, msg, R"("max_attempts":1)");
  auto job2 = wait_final(h, key, id2);
  CHECK(job2.at("state") == "dead");
  CHECK_MESSAGE(attempt_error(job2, 0).find("SSL") != std::string::npos, attempt_error(job2, 0));
  CHECK(sink.messages().size() == 1);
}

TEST_CASE("implicit TLS (SMTPS)") {
  scratch s;
  fs::path certs = fs::path(require_env("JOBS_BIN_DIR")) / "test-logs" / s.name / "certs";
  fs::create_directories(certs);
  auto cmd = fmt::format(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout {0}/key.pem -out {0}/cert.pem "
      "> {0}/openssl.log 2>&1",
      certs.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
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
  auto id = submit(
      h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"smtps","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0].meta.at("tls") == true);
}

TEST_CASE("STARTTLS required and not offered: nothing is sent in clear") {
  scratch s;
  smtp_sink sink(s, "plain");
  auto env = relay_env(sink);
  env["JOBS_SMTP_TLS"] = "starttls";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})",
             R"("max_attempts":1)");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  auto error = attempt_error(job, 0);
  bool says_tls =
      error.find("STARTTLS") != std::string::npos || error.find("SSL") != std::string::npos;
  CHECK_MESSAGE(says_tls, error);
  CHECK(sink.messages().empty());
  CHECK(sink.events().empty());
}

TEST_CASE("a relay answering 451 then 250: the retry succeeds and one message is stored") {
  scratch s;
  smtp_sink sink(s, "451", {"--replies", "451"});
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  CHECK(job.at("attempts") == 2);
  CHECK(attempt_error(job, 0).find("smtp 451 4.3.0 Try again later (sink)") == 0);
  CHECK(sink.events() == std::vector<std::string>{"0 451", "1 250"});
  auto got = sink.messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0].header("Message-ID") == "<" + id + "@example.com>");
}

TEST_CASE("a relay answering 550: the job is dead with the reply recorded") {
  scratch s;
  smtp_sink sink(s, "550", {"--replies", "550"});
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  CHECK(job.at("attempts") == 1);
  CHECK(job.at("error") == "smtp 550 5.7.1 Message rejected (sink)");
  CHECK(sink.messages().empty());
}

TEST_CASE("connection lost after the end of data: unknown, and the retry reuses the Message-ID") {
  scratch s;
  smtp_sink sink(s, "drop", {"--replies", "drop,hang"});
  auto env = relay_env(sink);
  env["JOBS_SMTP_TIMEOUT_MS"] = "1500";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})");
  auto job = wait_final(h, key, id);
  REQUIRE_MESSAGE(job.at("state") == "succeeded", json::serialize(job));
  CHECK(job.at("attempts") == 3);
  const std::string mid = "<" + id + "@example.com>";
  // Dropped after the end of data, then no reply within the deadline.
  for (std::size_t i : {0, 1}) {
    auto error = attempt_error(job, i);
    CHECK_MESSAGE(error.starts_with("unknown: "), error);
    CHECK(error.find("reuses Message-ID " + mid) != std::string::npos);
  }
  CHECK(sink.events() == std::vector<std::string>{"0 drop", "1 hang", "2 250"});
  // The relay had queued the first two: the receiver sees one Message-ID three times.
  auto got = sink.messages();
  REQUIRE(got.size() == 3);
  for (const auto& m : got) CHECK(m.header("Message-ID") == mid);
}

TEST_CASE("header injection: 400 at the API, refused again by the worker") {
  scratch s;
  smtp_sink sink(s, "inject");
  platform p(s, {"email"}, relay_env(sink));
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  struct attempt {
    std::string payload, pointer;
  };
  for (
      const auto& a : std::vector<attempt>{
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: victim@example.net","text":"t"})",
           "/payload/subject"},
          {R"({"from":{"email":"a@example.com","name":"A\nBcc: victim@example.net"},"to":["b@example.org"],"subject":"s","text":"t"})",
           "/payload/from/name"},
          {R"({"from":"a@example.com","to":["b@example.org\r\nBcc: victim@example.net"],"subject":"s","text":"t"})",
           "/payload/to/0"},
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","headers":{"X-Id":"1\u0000\r\nBcc: victim@example.net"}})",
           "/payload/headers/X-Id"},
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","headers":{"Bcc":"victim@example.net"}})",
           "/payload"},  // valijson reports propertyNames at the parent
          {R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t","attachments":[{"filename":"a\r\nBcc: victim@example.net","content":""}]})",
           "/payload/attachments/0/filename"}}) {
    auto r = h.post_json("/v1/jobs",
                         R"({"queue":"email","type":"send","payload":)" + a.payload + "}", key);
    CHECK_MESSAGE(r.status == 400, a.payload);
    CHECK(r.json().at("code") == "payload_invalid");
    CHECK_MESSAGE(r.json().at("pointer") == a.pointer.c_str(), r.body);
  }
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs") == 0);

  // A job written around the API (an older schema, a bug, a hand-made row):
  // the worker refuses it for good and sends nothing.
  auto j = sample_job("acme");
  j.queue = "email";
  j.type = "send";
  j.payload_json =
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: victim@example.net","text":"t"})";
  {
    auto c = pg_connect(s.pg_url);
    pqxx::work w(*c);
    insert_jobs(w, std::span(&j, 1));
    w.commit();
  }
  // Unconfirmed rows are published by the scheduler's recovery path when
  // their (here zero) publish grace passes.
  auto id = j.id.value;
  auto job = wait_final(h, key, id, 60s);
  CHECK(job.at("state") == "dead");
  CHECK(std::string(job.at("error").as_string()).find("subject contains CR, LF") !=
        std::string::npos);
  CHECK(sink.events().empty());
}

TEST_CASE("200 messages sent concurrently all arrive exactly once") {
  scratch s;
  smtp_sink sink(s, "200");
  auto env = relay_env(sink);
  env["JOBS_WORKER_CONCURRENCY"] = "16";
  env["JOBS_SMTP_MAX_CONNECTIONS"] = "8";
  env["JOBS_EMAIL_DOMAIN_RATE"] = "0";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  constexpr int total = 200, threads = 4;
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      http_client h(p.port);
      for (int i = t; i < total; i += threads) {
        auto id = submit(h, key,
                         fmt::format(R"({{"from":"a@example.com","to":["user{}@example{}.org"],)"
                                     R"("subject":"n{}","text":"message {}"}})",
                                     i, i % 5, i, i));
        std::lock_guard lk(mu);
        ids.insert(id);
      }
    });
  }
  for (auto& c : clients) c.join();
  REQUIRE(ids.size() == total);
  bool done = wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
      },
      120s);
  CHECK_MESSAGE(done, count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"));
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  auto got = sink.messages();
  CHECK(got.size() == total);
  std::map<std::string, int> by_id;
  for (const auto& m : got) {
    auto mid = m.header("Message-ID");
    by_id[mid.substr(1, mid.find('@') - 1)]++;
  }
  int duplicated = 0, lost = 0;
  for (const auto& id : ids) {
    auto it = by_id.find(id);
    if (it == by_id.end())
      ++lost;
    else if (it->second > 1)
      ++duplicated;
  }
  MESSAGE("lost=", lost, " duplicated=", duplicated);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(by_id.size() == total);
}

TEST_CASE("the per-domain throttle spaces messages to one domain") {
  scratch s;
  smtp_sink sink(s, "throttle");
  auto env = relay_env(sink);
  env["JOBS_EMAIL_DOMAIN_RATE"] = "4";
  platform p(s, {"email"}, env);
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  constexpr int total = 16;
  for (int i = 0; i < total; ++i)
    submit(
        h, key,
        fmt::format(
            R"({{"from":"a@example.com","to":["u{}@busy.example"],"subject":"s","text":"t"}})", i));
  REQUIRE(wait_until(
      [&] {
        return count(s.pg_url, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == total;
      },
      60s));
  std::vector<double> at;
  for (const auto& m : sink.messages()) at.push_back(m.meta.at("received_at").as_double());
  REQUIRE(at.size() == total);
  std::sort(at.begin(), at.end());
  // 4/s with a burst of 4: 16 messages need at least (16 - 4) / 4 = 3 s.
  MESSAGE("16 messages to one domain took ", at.back() - at.front(), " s");
  CHECK(at.back() - at.front() >= 2.7);
  // No second holds more than the burst plus the rate.
  for (std::size_t i = 0; i + 8 < at.size(); ++i) CHECK(at[i + 8] - at[i] >= 0.9);
  // A throttled job is snoozed or waits: never an attempt lost to it.
  CHECK(count(s.pg_url, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
}

TEST_CASE("without a relay the worker runs and fails email jobs clearly") {
  scratch s;
  platform p(s, {"email"});
  auto key = create_key(s.pg_url, "acme");
  http_client h(p.port);
  auto id =
      submit(h, key, R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"t"})",
             R"("max_attempts":1)");
  auto job = wait_final(h, key, id);
  CHECK(job.at("state") == "dead");
  CHECK(attempt_error(job, 0) == "no SMTP relay configured (set JOBS_SMTP_HOST)");
}
