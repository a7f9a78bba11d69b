#include "support/smtp_sink.hpp"
#include "support/files.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <cstdlib>
#include <fstream>

namespace jobs::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

}  // namespace

std::string received::header(const std::string& name) const {
  for (const auto& h : meta.at("headers").as_array())
    if (h.as_array()[0].as_string() == name) return std::string(h.as_array()[1].as_string());
  return {};
}

smtp_sink::smtp_sink(const scratch& s, const std::string& name, std::vector<std::string> args) {
  port = free_port();
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

std::vector<received> smtp_sink::messages() const {
  std::vector<received> out;
  const auto n = events().size();
  for (std::size_t i = 0; i < n; ++i) {
    auto json_file = dir / fmt::format("msg-{}.json", i);
    if (!fs::exists(json_file)) continue;
    out.push_back({file_text(dir / fmt::format("msg-{}.eml", i)),
                   json::parse(file_text(json_file)).as_object()});
  }
  return out;
}

std::vector<std::string> smtp_sink::events() const {
  std::vector<std::string> out;
  std::ifstream in(dir / "events.log");
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void make_test_certificate(const fs::path& dir, const std::string& names) {
  fs::create_directories(dir);
  auto cmd = fmt::format(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName={1} -keyout {0}/key.pem -out {0}/cert.pem > {0}/openssl.log 2>&1",
      dir.string(), names);
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "openssl failed; see ", dir.string());
}

std::map<std::string, std::string> relay_env(const smtp_sink& sink) {
  return {{"JOBS_SMTP_HOST", "127.0.0.1"},
          {"JOBS_SMTP_PORT", std::to_string(sink.port)},
          {"JOBS_SMTP_TLS", "off"}};
}

std::string submit_email(http_client& h, const std::string& key, const std::string& payload,
                         const std::string& extra) {
  auto r = h.post_json(
      "/v1/jobs", R"({"queue":"email","type":"send",)" + extra + R"(,"payload":)" + payload + "}",
      key);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return std::string(r.json().at("id").as_string());
}

json::object wait_final(http_client& h, const std::string& key, const std::string& id,
                        std::chrono::milliseconds timeout) {
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

std::string base64(std::string_view in) {
  static constexpr std::string_view a =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(in[k]));
  };
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += a[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = byte(i) << 16 | (i + 1 < in.size() ? byte(i + 1) << 8 : 0);
    out += a[v >> 18 & 63];
    out += a[v >> 12 & 63];
    out += i + 1 < in.size() ? a[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace jobs::test
