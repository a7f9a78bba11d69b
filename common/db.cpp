#include "common/db.hpp"

#include "common/log.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace jobs {

std::string pg_conninfo(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &error);
  if (!opts) {
    std::string why = error ? error : "out of memory";
    PQfreemem(error);
    throw std::invalid_argument("bad PostgreSQL URL: " + why);
  }
  bool has_mode = false, has_root = false, has_timeout = false, has_keepalive = false,
       has_user_timeout = false;
  for (auto* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    std::string_view k = o->keyword;
    has_mode |= k == "sslmode";
    has_root |= k == "sslrootcert";
    has_timeout |= k == "connect_timeout";
    has_keepalive |= k.starts_with("keepalives");
    has_user_timeout |= k == "tcp_user_timeout";
  }
  PQconninfoFree(opts);
  // libpq's environment (PGSSLMODE, PGCONNECT_TIMEOUT) still wins over these defaults.
  has_mode |= std::getenv("PGSSLMODE") != nullptr;
  has_timeout |= std::getenv("PGCONNECT_TIMEOUT") != nullptr;
  std::vector<std::string> extra;
  if (has_root && !has_mode) extra.emplace_back("sslmode=verify-full");
  if (!has_timeout) extra.emplace_back("connect_timeout=10");
  // A server host that vanishes (powered off, partitioned) sends no reset:
  // without these, a call waiting for its answer waits for the kernel's
  // keepalive (2 hours idle by default), and one whose data goes unacknowledged
  // for TCP's retransmissions (~15 minutes). Probes from 10 s idle, every 5 s,
  // 3 unanswered, and 30 s for unacknowledged data (on Linux, the user timeout
  // also bounds the probes): the connection fails within ~30 s.
  // A healthy server's kernel answers probes, so long statements are unaffected.
  if (!has_keepalive)
    for (const char* e :
         {"keepalives=1", "keepalives_idle=10", "keepalives_interval=5", "keepalives_count=3"})
      extra.emplace_back(e);
  if (!has_user_timeout) extra.emplace_back("tcp_user_timeout=30000");
  bool uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  std::string out = url;
  for (const auto& e : extra) {
    if (uri)
      out += (out.find('?') == std::string::npos ? "?" : "&") + e;
    else
      out += " " + e;
  }
  return out;
}

std::unique_ptr<pqxx::connection> pg_connect(const std::string& url) {
  auto c = std::make_unique<pqxx::connection>(pg_conninfo(url));
  // Timestamps leave PostgreSQL as JSON in the session's zone: UTC, whatever
  // the server's. libpqxx sets it again if it reconnects.
  c->set_variable("TimeZone", "UTC");
  return c;
}

std::unique_ptr<pqxx::connection> pg_connect_hot(const std::string& url) {
  auto c = pg_connect(url);
  // A penalty, not a ban: a table without another path is still read.
  // libpqxx sets it again if it reconnects.
  c->set_variable("enable_seqscan", "off");
  return c;
}

void plan_refresher::tick(pqxx::connection& c) {
  auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  next_ = now + every_;
  pqxx::nontransaction n(c);
  n.exec("DISCARD PLANS");
}

namespace {
// Any 64-bit constant unique to this project serialises migrations.
constexpr long long migration_lock_key = 0x6a6f62736d696772;  // "jobsmigr"

constexpr const char* create_migrations_table = R"(
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  ))";
}  // namespace

int apply_migrations(pqxx::connection& c, const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".sql") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("no migrations found in " + dir);

  {
    pqxx::nontransaction n(c);
    n.exec_params("SELECT pg_advisory_lock($1)", migration_lock_key);
    n.exec(create_migrations_table);
  }
  int applied = 0;
  try {
    for (const auto& f : files) {
      auto name = f.filename().string();
      int version = std::stoi(name.substr(0, name.find('_')));
      pqxx::work w(c);
      if (!w.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", version).empty())
        continue;
      std::ifstream in(f);
      std::stringstream sql;
      sql << in.rdbuf();
      w.exec(sql.str());
      w.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name);
      w.commit();
      log_info("migration applied", {{"version", version}, {"name", name}});
      ++applied;
    }
  } catch (...) {
    pqxx::nontransaction n(c);
    n.exec_params("SELECT pg_advisory_unlock($1)", migration_lock_key);
    throw;
  }
  pqxx::nontransaction n(c);
  n.exec_params("SELECT pg_advisory_unlock($1)", migration_lock_key);
  return applied;
}

db_pool::db_pool(std::string url, int size) : url_(std::move(url)) {
  for (int i = 0; i < size; ++i) threads_.emplace_back([this] { run(); });
}

db_pool::~db_pool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void db_pool::post(task t) {
  {
    std::lock_guard lk(mu_);
    tasks_.push_back(std::move(t));
  }
  cv_.notify_one();
}

std::size_t db_pool::waiting() const {
  std::lock_guard lk(mu_);
  return tasks_.size();
}

namespace {
// A connection the server closed while it sat idle (a restart, a failover,
// pg_terminate_backend) still looks open until it is used: its socket holds
// the server's parting error and the end of the stream. An idle pool
// connection (no LISTEN) has nothing else to read but a rare notice, so
// anything readable retires it: one poll, no round trip, and no task fails
// on a connection that was already gone.
bool closed_while_idle(const pqxx::connection& c) {
  pollfd p{c.sock(), POLLIN | POLLRDHUP, 0};
  return p.fd < 0 || ::poll(&p, 1, 0) != 0;
}
}  // namespace

void db_pool::run() {
  std::unique_ptr<pqxx::connection> conn;
  for (;;) {
    task t;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      t = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      if (conn && (!conn->is_open() || closed_while_idle(*conn))) conn.reset();
      if (!conn) conn = pg_connect(url_);
    } catch (const std::exception& e) {
      log_warn("postgresql unreachable", {{"error", e.what()}});
      conn.reset();
    }
    // A task reports its own errors; a broken connection is dropped so the
    // next task gets a fresh one.
    in_use_.fetch_add(1, std::memory_order_relaxed);
    try {
      t(conn.get());
    } catch (const pqxx::broken_connection&) {
      conn.reset();
    } catch (const std::exception& e) {
      log_error("database task failed", {{"error", e.what()}});
    }
    in_use_.fetch_sub(1, std::memory_order_relaxed);
    if (conn && !conn->is_open()) conn.reset();
  }
}

std::string redact_pg_url(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (!options) {
    PQfreemem(error);
    return "(a malformed PostgreSQL URL)";
  }
  auto secret = [](std::string_view k) { return k == "password" || k == "sslpassword"; };
  bool any = false;
  for (auto* o = options; o->keyword; ++o) any = any || (secret(o->keyword) && o->val && *o->val);
  std::string out;
  if (!any) {
    out = url;
  } else {
    for (auto* o = options; o->keyword; ++o) {
      if (!o->val) continue;
      if (!out.empty()) out += ' ';
      out += o->keyword;
      out += '=';
      out += secret(o->keyword) ? "***" : o->val;
    }
  }
  PQconninfoFree(options);
  return out;
}

}  // namespace jobs
