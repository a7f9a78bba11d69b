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

/// `url` (a postgresql:// URI or key=value conninfo) with safer defaults for
/// what it leaves unset: sslmode=verify-full when it names an sslrootcert
/// (libpq would default to `prefer`, which verifies nothing), and a
/// connect_timeout of 10 s. Throws std::invalid_argument for a malformed url.
std::string pg_conninfo(const std::string& url);

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
  /// For metrics: threads (connections), tasks running, tasks waiting.
  int size() const noexcept { return static_cast<int>(threads_.size()); }
  int in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::size_t waiting() const;

 private:
  void run();

  std::string url_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<task> tasks_;
  bool stopping_ = false;
  std::atomic<int> in_use_{0};
  std::vector<std::thread> threads_;
};

/// Runs `fn(conn)` and retries once on a fresh connection when the first
/// one turns out to be broken (a server restart between uses).
template <class Fn>
auto with_reconnect(std::unique_ptr<pqxx::connection>& conn, const std::string& url, Fn&& fn) {
  if (!conn || !conn->is_open()) conn = pg_connect(url);
  try {
    return fn(*conn);
  } catch (const pqxx::broken_connection&) {
    conn = pg_connect(url);
    return fn(*conn);
  }
}

}  // namespace jobs
