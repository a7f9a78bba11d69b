#pragma once
// PostgreSQL access: connections, a pool of connection-owning threads, and
// the migrations.
//
// `db_pool` runs blocking libpqxx work off the caller's thread: each of its
// threads owns one connection; `post` queues a task that gets a connection.
// A broken connection is reopened (with backoff) before the next task. The
// API's coroutines wait on it through `async_run` (api/async.hpp).
//
// Thread-safety: db_pool is safe to use from any thread; a pqxx::connection
// handed to a task belongs to that task until it returns.

#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace jobs {

/// Opens a connection to pg_conninfo(url); throws pqxx::broken_connection
/// when unreachable or when the server's certificate does not verify.
std::unique_ptr<pqxx::connection> pg_connect(const std::string& url);
/// pg_connect() for the hot path (the submitter's group commits, a worker's
/// claims and completions), whose statements all name their rows by id
/// (`id = ANY($ids)`, common/store_submit.cpp and store_claims.cpp) and run
/// prepared: sequential scans are off in its session, and its user drops the
/// cached plans now and then (plan_refresher). PostgreSQL keeps a prepared statement's
/// generic plan; made while the jobs table was small, it read the table or a
/// whole index (cheapest then) and stayed so while the table grew, until an
/// ANALYZE: a run of 50,000 jobs slowed to a third, 9,400 buffers a completion.
/// (Planning every execution instead cost a third of the throughput.)
std::unique_ptr<pqxx::connection> pg_connect_hot(const std::string& url);

/// DISCARD PLANS on a hot connection at most every `every`: its prepared
/// statements are planned again for the tables as they are now.
class plan_refresher {
 public:
  explicit plan_refresher(std::chrono::seconds every = std::chrono::seconds(30)) : every_(every) {}
  void tick(pqxx::connection& c);

 private:
  std::chrono::seconds every_;
  std::chrono::steady_clock::time_point next_ = std::chrono::steady_clock::now() + every_;
};

/// `url` (a postgresql:// URI or key=value conninfo) with safer defaults for
/// what it leaves unset: sslmode=verify-full when it names an sslrootcert
/// (libpq would default to `prefer`, which verifies nothing), a
/// connect_timeout of 10 s, TCP keepalives (10 s idle, every 5 s, 3 probes)
/// unless it sets any keepalives* parameter, and a tcp_user_timeout of 30 s.
/// Throws std::invalid_argument for a malformed url.
std::string pg_conninfo(const std::string& url);

/// `url` (a libpq URI or conninfo) to log: as given when it holds no
/// password, else as libpq reads it (`host=… user=… password=***`, every
/// option it sets), so that no form libpq takes a password or an
/// sslpassword from (`user:pw@`, `?password=`, `?%70assword=`, a conninfo's
/// `password='a b'`) shows it. Unparseable: "(a malformed PostgreSQL URL)".
std::string redact_pg_url(const std::string& url);

/// Applies the numbered files `<dir>/NNNN_name.sql` not yet applied, each in
/// its own transaction, in order, under an advisory lock so that several
/// processes starting at once apply each exactly once. Returns how many ran.
int apply_migrations(pqxx::connection& c, const std::string& dir);

class db_pool {
 public:
  using task = std::function<void(pqxx::connection*)>;  ///< nullptr: no connection could be had

  db_pool(std::string url, int size);
  ~db_pool();  ///< runs queued tasks, then joins
  db_pool(const db_pool&) = delete;
  db_pool& operator=(const db_pool&) = delete;

  void post(task t);
  const std::string& url() const noexcept { return url_; }
  /// How long the API's callers (db_call, api/async.hpp) wait for a task's
  /// answer before they give up on it (503) and cancel it.
  /// Set before the pool is shared.
  std::chrono::milliseconds call_deadline() const noexcept { return call_deadline_; }
  void set_call_deadline(std::chrono::milliseconds d) noexcept { call_deadline_ = d; }
  /// For metrics: threads (connections), tasks running, tasks waiting.
  int size() const noexcept { return static_cast<int>(threads_.size()); }
  int in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::size_t waiting() const;

 private:
  void run();

  std::string url_;
  std::chrono::milliseconds call_deadline_{30000};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<task> tasks_;
  bool stopping_ = false;
  std::atomic<int> in_use_{0};
  std::vector<std::thread> threads_;
};

/// Runs `fn(conn)` and retries once on a fresh connection when the first
/// one turns out to be broken (a server restart between uses). New
/// connections come from `connect`.
template <class Fn>
auto with_reconnect(std::unique_ptr<pqxx::connection>& conn, const std::string& url, Fn&& fn,
                    std::unique_ptr<pqxx::connection> (*connect)(const std::string&) = pg_connect) {
  if (!conn || !conn->is_open()) conn = connect(url);
  try {
    return fn(*conn);
  } catch (const pqxx::broken_connection&) {
    conn = connect(url);
    return fn(*conn);
  }
}

}  // namespace jobs
