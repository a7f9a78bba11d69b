#include "support/live.hpp"

#include "common/db.hpp"
#include "common/keys.hpp"
#include "common/store.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <cstdio>

#include <cstdlib>
#include <filesystem>
#include <random>

extern char** environ;

namespace jobs::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    std::string why = "missing " + std::string(name) + ": run this test through scripts/test";
    FAIL(why);
  }
  return v;
}

namespace {

std::string random_name() {
  unsigned char r[6];
  RAND_bytes(r, sizeof r);
  std::string s = "t_";
  for (auto b : r) s += fmt::format("{:02x}", b);
  return s;
}

// http://user:pass@host:port of the management API.
struct mgmt {
  int port;
  std::string auth;
};
mgmt management() {
  auto url = require_env("JOBS_TEST_MGMT_URL");  // the view below points into it
  auto u = boost::urls::parse_uri(url);
  REQUIRE(u);
  std::string creds = std::string(u->user()) + ":" + std::string(u->password());
  std::string enc(beast::detail::base64::encoded_size(creds.size()), '\0');
  enc.resize(beast::detail::base64::encode(enc.data(), creds.data(), creds.size()));
  return {u->port_number(), "Basic " + enc};
}

std::string with_database(const std::string& url, const std::string& db) {
  return url.substr(0, url.rfind('/') + 1) + db;
}

}  // namespace

scratch::scratch() : name(random_name()) {
  auto base_pg = require_env("JOBS_TEST_PG_URL");
  {
    auto c = pg_connect(base_pg);
    pqxx::nontransaction n(*c);
    n.exec("CREATE DATABASE " + name);
  }
  pg_url = with_database(base_pg, name);
  {
    auto c = pg_connect(pg_url);
    apply_migrations(*c, std::string(JOBS_SOURCE_DIR) + "/schemas/migrations");
  }
  auto m = management();
  http_client h(m.port);
  auto r = h.request(http::verb::put, "/api/vhosts/" + name, "", {{"authorization", m.auth}});
  REQUIRE_MESSAGE(r.status / 100 == 2, "create vhost: ", r.status, " ", r.body);
  r = h.request(http::verb::put, "/api/permissions/" + name + "/guest",
                R"({"configure":".*","write":".*","read":".*"})",
                {{"authorization", m.auth}, {"content-type", "application/json"}});
  REQUIRE_MESSAGE(r.status / 100 == 2, "vhost permissions: ", r.status, " ", r.body);
  auto base_amqp = require_env("JOBS_TEST_AMQP_URL");
  amqp_url = base_amqp.substr(0, base_amqp.rfind('/') + 1) + name;
}

scratch::~scratch() {
  try {
    auto m = management();
    http_client h(m.port);
    h.request(http::verb::delete_, "/api/vhosts/" + name, "", {{"authorization", m.auth}});
    auto c = pg_connect(require_env("JOBS_TEST_PG_URL"));
    pqxx::nontransaction n(*c);
    n.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Best effort: the servers are thrown away after the run anyway.
  }
}

boost::json::value http_reply::json() const { return boost::json::parse(body); }

struct http_client::impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  int port;
  bool open = false;
  void connect() {
    stream.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    open = true;
  }
};

http_client::http_client(int port) : impl_(std::make_unique<impl>()) { impl_->port = port; }
http_client::~http_client() = default;

http_reply http_client::request(http::verb method, const std::string& target,
                                const std::string& body,
                                const std::map<std::string, std::string>& headers) {
  for (int attempt = 0;; ++attempt) {
    try {
      if (!impl_->open) impl_->connect();
      http::request<http::string_body> req{method, target, 11};
      req.set(http::field::host, "127.0.0.1");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      impl_->stream.expires_after(std::chrono::seconds(30));
      http::write(impl_->stream, req);
      http::response<http::string_body> res;
      http::read(impl_->stream, impl_->buffer, res);
      http_reply out{static_cast<int>(res.result_int()), res.body(), {}};
      for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.headers[name] = std::string(f.value());
      }
      if (!res.keep_alive()) {
        beast::error_code ec;
        impl_->stream.socket().close(ec);
        impl_->open = false;
      }
      return out;
    } catch (const beast::system_error&) {
      // A keep-alive connection the server closed meanwhile: retry once on a new one.
      beast::error_code ec;
      impl_->stream.socket().close(ec);
      impl_->open = false;
      impl_->buffer.clear();
      if (attempt > 0) throw;
    }
  }
}

http_reply http_client::get(const std::string& target, const std::string& key) {
  return request(http::verb::get, target, "", {{"authorization", "Bearer " + key}});
}

http_reply http_client::post_json(const std::string& target, const std::string& body,
                                  const std::string& key) {
  return request(http::verb::post, target, body,
                 {{"authorization", "Bearer " + key}, {"content-type", "application/json"}});
}

process::process(const std::string& bin, std::vector<std::string> args,
                 std::map<std::string, std::string> env, const std::string& log_file) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto name = kv.substr(0, kv.find('='));
    if (!env.contains(name)) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "cannot start ", bin);
}

process::~process() {
  if (!running()) return;
  signal(SIGTERM);
  if (wait(std::chrono::seconds(20)) == -1) {
    signal(SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

void process::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int process::wait(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!reaped_) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      reaped_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() > until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

bool process::running() { return wait(std::chrono::milliseconds(0)) == -1; }

int free_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

int free_port_run(int n) {
  // Below Linux's ephemeral range (32768-60999), so an outgoing connection's
  // local port can't take one of them between this check and their use.
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 30000);
  for (;;) {
    int base = pick(rng);
    try {
      asio::io_context ioc;
      std::vector<tcp::acceptor> held;
      for (int i = 0; i < n; ++i)
        held.emplace_back(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), base + i));
      return base;
    } catch (const std::exception&) {
    }
  }
}

std::string binary(const std::string& name) { return require_env("JOBS_BIN_DIR") + "/" + name; }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

platform::platform(scratch& s, std::vector<std::string> worker_queues,
                   std::map<std::string, std::string> extra_env, bool test_handlers) {
  port = free_port();
  env = {{"JOBS_PG_URL", s.pg_url},
         {"JOBS_AMQP_URL", s.amqp_url},
         {"JOBS_HTTP_PORT", std::to_string(port)}};
  for (auto& [k, v] : extra_env) env[k] = v;
  log_dir = require_env("JOBS_BIN_DIR") + "/test-logs/" + s.name;
  std::filesystem::create_directories(log_dir);
  if (test_handlers) {
    // The product's schemas plus the test handlers' own, and the migrations.
    namespace fs = std::filesystem;
    std::string src = JOBS_SOURCE_DIR;
    fs::path dir = log_dir + "/schemas";
    fs::create_directories(dir / "jobs");
    for (const auto* from : {"/schemas/jobs", "/test/schemas/jobs"})
      for (const auto& f : fs::directory_iterator(src + from))
        fs::copy_file(f.path(), dir / "jobs" / f.path().filename(),
                      fs::copy_options::overwrite_existing);
    if (!fs::exists(dir / "migrations"))
      fs::create_directory_symlink(src + "/schemas/migrations", dir / "migrations");
    env["JOBS_SCHEMA_DIR"] = dir.string();
    env["JOBS_TEST_HANDLERS"] = "on";
    auto c = pg_connect(s.pg_url);
    pqxx::nontransaction n(*c);
    n.exec(
        "CREATE TABLE IF NOT EXISTS test_handled (job_id uuid NOT NULL, attempt integer NOT NULL, "
        "at timestamptz NOT NULL DEFAULT clock_timestamp())");
  }
  api = std::make_unique<process>(binary("jobs-api"), std::vector<std::string>{}, env,
                                  log_dir + "/api.log");
  for (const auto& q : worker_queues) add_worker(q);
  http_client h(port);
  bool ready = wait_until(
      [&] {
        try {
          return h.request(http::verb::get, "/readyz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30));
  REQUIRE_MESSAGE(ready, "the API did not become ready; see ", log_dir);
}

process& platform::add_worker(const std::string& queue,
                              std::map<std::string, std::string> extra_env) {
  auto e = env;
  for (auto& [k, v] : extra_env) e[k] = v;
  auto n = workers.size();
  workers.push_back(std::make_unique<process>(
      binary("jobs-worker"), std::vector<std::string>{"--queue", queue}, e,
      log_dir + "/worker-" + queue + "-" + std::to_string(n) + ".log"));
  return *workers.back();
}

process& platform::add_api(std::map<std::string, std::string> extra_env) {
  auto e = env;
  for (auto& [k, v] : extra_env) e[k] = v;
  auto n = more_apis.size() + 1;
  more_api_ports.push_back(free_port());
  e["JOBS_HTTP_PORT"] = std::to_string(more_api_ports.back());
  more_apis.push_back(std::make_unique<process>(binary("jobs-api"), std::vector<std::string>{}, e,
                                                log_dir + "/api-" + std::to_string(n) + ".log"));
  return *more_apis.back();
}

long count(const std::string& pg_url, const std::string& sql) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  return n.exec(sql)[0][0].as<long>();
}

pages_read plan_pages(const std::string& pg_url, const std::string& plan_json,
                      const std::string& table) {
  auto top = boost::json::parse(plan_json).as_array()[0].at("Plan").as_object();
  pages_read r;
  r.blocks = top.at("Shared Hit Blocks").as_int64() + top.at("Shared Read Blocks").as_int64();
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  r.table = n.exec_params("SELECT pg_relation_size($1::regclass) / 8192", table)[0][0].as<long>();
  return r;
}

jobs::new_job sample_job(const std::string& tenant, const std::string& type) {
  jobs::new_job j;
  j.id = new_job_id();
  j.tenant = tenant_id{tenant};
  j.queue = "processing";
  j.type = type;
  j.payload_json = "{}";
  return j;
}

std::map<std::string, int> handled(const std::string& pg_url) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  std::map<std::string, int> out;
  for (const auto& row : n.exec("SELECT job_id::text, count(*) FROM test_handled GROUP BY job_id"))
    out[row[0].as<std::string>()] = row[1].as<int>();
  return out;
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (auto n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    pclose(f);
  }
  return out;
}

void services(const std::string& args) {
  auto cmd =
      std::string(JOBS_SOURCE_DIR) + "/scripts/lib/test-services " + args + " > /dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  REQUIRE_MESSAGE(rc == 0, "test-services ", args, " failed");
}

bool rabbitmqctl(const std::string& args) {
  auto cmd = std::string("bash -c 'source ") + JOBS_SOURCE_DIR +
             "/scripts/lib/services.sh && svc_rabbitmqctl \"$JOBS_TEST_DIR\" " + args +
             "' > /dev/null";
  return std::system(cmd.c_str()) == 0;
}

memory_alarm::memory_alarm() { REQUIRE(rabbitmqctl("set_vm_memory_high_watermark 0.0001")); }

void memory_alarm::lift() {
  if (on_) CHECK(rabbitmqctl("set_vm_memory_high_watermark 0.4"));  // the node's default
  on_ = false;
}

std::string create_key(const std::string& pg_url, const std::string& tenant) {
  auto c = pg_connect(pg_url);
  return create_api_key(*c, tenant_id{tenant}, "test", "admin");
}

std::string state_of(const std::string& pg_url, const std::string& id) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  return n.exec_params("SELECT state::text FROM jobs WHERE id = $1::uuid", id)[0][0]
      .as<std::string>();
}

std::string submit_job(http_client& h, const std::string& key, const std::string& body) {
  auto r = h.post_json("/v1/jobs", body, key);
  REQUIRE_MESSAGE(r.status == 202, r.status, " ", r.body);
  return std::string(r.json().at("id").as_string());
}

}  // namespace jobs::test
