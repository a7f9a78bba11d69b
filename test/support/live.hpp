#pragma once
// Helpers for tests against live servers (started by scripts/test and
// passed in JOBS_TEST_PG_URL, JOBS_TEST_AMQP_URL, JOBS_TEST_MGMT_URL).
//
// Each test takes a `scratch`: a database and a RabbitMQ vhost of its own,
// created fresh and dropped afterwards, so tests never see each other's jobs
// or messages.

#include <boost/beast/http/verb.hpp>
#include "common/store.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace jobs::test {

/// The variable's value; fails the test when it is missing.
std::string require_env(const char* name);

struct scratch {
  scratch();
  ~scratch();
  scratch(const scratch&) = delete;
  std::string name;
  std::string pg_url;    ///< database of its own, migrated
  std::string amqp_url;  ///< vhost of its own
};

struct http_reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case names
  boost::json::value json() const;
};

/// A keep-alive HTTP/1.1 client for one server on 127.0.0.1.
class http_client {
 public:
  explicit http_client(int port);
  ~http_client();
  http_reply request(boost::beast::http::verb method, const std::string& target,
                     const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {});
  http_reply get(const std::string& target, const std::string& key);
  http_reply post_json(const std::string& target, const std::string& body, const std::string& key);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A child process (a daemon under test). The destructor stops it with
/// SIGTERM and waits (bounded), then SIGKILL.
class process {
 public:
  process(const std::string& binary, std::vector<std::string> args,
          std::map<std::string, std::string> env, const std::string& log_file);
  ~process();
  process(const process&) = delete;
  void signal(int sig);
  /// Waits for exit up to `timeout`; returns the exit status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

/// A loopback TCP port free right now.
int free_port();
/// The first of `n` consecutive free loopback ports, outside the ephemeral range.
int free_port_run(int n);

/// Path of a built binary (JOBS_BIN_DIR).
std::string binary(const std::string& name);

/// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

/// The platform (API + one worker per listed queue) on a scratch. With
/// `test_handlers`, workers/testing.hpp's handlers are on (and accepted by
/// the API), and their completions are counted in the table test_handled.
struct platform {
  explicit platform(scratch& s, std::vector<std::string> worker_queues = {"processing"},
                    std::map<std::string, std::string> extra_env = {}, bool test_handlers = false);
  std::map<std::string, std::string> env;
  int port = 0;
  std::unique_ptr<process> api;
  std::vector<std::unique_ptr<process>> workers;
  std::string log_dir;
  /// Starts one more worker for `queue`.
  process& add_worker(const std::string& queue, std::map<std::string, std::string> extra_env = {});
  /// Starts one more API process (another scheduler too).
  process& add_api(std::map<std::string, std::string> extra_env = {});
  std::vector<std::unique_ptr<process>> more_apis;
  std::vector<int> more_api_ports;  ///< their HTTP ports, in order
};

/// A queued `processing` job of `tenant` with an empty payload, for tests
/// that write jobs directly.
jobs::new_job sample_job(const std::string& tenant, const std::string& type = "noop");

/// The first column of the first row of `sql` (a count) on the database.
long count(const std::string& pg_url, const std::string& sql);

/// What a plan read: the shared buffers (hit + read) at the top node of an
/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` result, against the pages of
/// `table`. For tests that a statement reads an index, not the whole table
/// (a count of pages, which a busy machine does not change, unlike time).
struct pages_read {
  long blocks = 0;
  long table = 0;
};
pages_read plan_pages(const std::string& pg_url, const std::string& plan_json,
                      const std::string& table);

/// Successful completions per job id, as counted by the test handlers.
std::map<std::string, int> handled(const std::string& pg_url);

/// The standard output of a shell command (`2>&1` in `cmd` to add stderr).
std::string command_output(const std::string& cmd);

/// Runs `scripts/lib/test-services ARGS` (stop-rabbitmq, start-postgres, …)
/// on the servers of this test run; fails the test if it fails.
void services(const std::string& args);

/// rabbitmqctl against this test run's broker; true when it succeeded.
bool rabbitmqctl(const std::string& args);

/// A memory alarm on the test broker for the scope (its memory limit set far
/// below what the node uses), lifted at its end however the test leaves it.
/// The broker blocks every publishing connection meanwhile.
class memory_alarm {
 public:
  memory_alarm();
  ~memory_alarm() { lift(); }
  memory_alarm(const memory_alarm&) = delete;
  memory_alarm& operator=(const memory_alarm&) = delete;
  void lift();

 private:
  bool on_ = true;
};

/// Creates an API key for `tenant` directly in the database.
std::string create_key(const std::string& pg_url, const std::string& tenant);

/// A job's state as PostgreSQL has it now.
std::string state_of(const std::string& pg_url, const std::string& id);

/// POSTs `body` to /v1/jobs, requires a 202 and returns the job's id.
std::string submit_job(http_client& h, const std::string& key, const std::string& body);

}  // namespace jobs::test
