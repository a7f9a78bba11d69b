// The API's connection pool (common/db.hpp, db_pool) against a live
// PostgreSQL: connections the server closed while they were idle (a restart,
// a failover, pg_terminate_backend) are replaced before a task gets them,
// so no request fails for a connection that was already gone.
#include "common/db.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <future>
#include <latch>
#include <set>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// Runs `fn` on every connection of the pool at once (each task waits for the
// others, so each thread takes one); what each returned, or its error.
std::vector<std::string> on_each(db_pool& pool, int size,
                                 const std::function<std::string(pqxx::connection&)>& fn) {
  std::latch all(size);
  std::vector<std::promise<std::string>> got(size);
  for (int i = 0; i < size; ++i)
    pool.post([&, i](pqxx::connection* c) {
      all.arrive_and_wait();
      try {
        if (!c) throw std::runtime_error("no connection");
        got[i].set_value(fn(*c));
      } catch (const std::exception& e) {
        got[i].set_value(std::string("error: ") + e.what());
      }
    });
  std::vector<std::string> out;
  for (auto& g : got) out.push_back(g.get_future().get());
  return out;
}

}  // namespace

TEST_CASE("db_pool: connections the server closed while idle are replaced, no task fails") {
  scratch s;
  const std::string app = "db_pool_pgtest";
  auto url =
      s.pg_url + (s.pg_url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + app;
  constexpr int size = 3;
  db_pool pool(url, size);
  auto pid = [](pqxx::connection& c) { return std::to_string(c.backendpid()); };
  auto before = on_each(pool, size, pid);
  std::set<std::string> first(before.begin(), before.end());
  REQUIRE(first.size() == size);

  auto admin = pg_connect(s.pg_url);
  {
    pqxx::nontransaction n(*admin);
    auto cut = n.exec_params(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app);
    CHECK(cut.size() == size);
  }
  // pg_terminate_backend signals; wait until the backends are gone.
  REQUIRE(wait_until(
      [&] {
        pqxx::nontransaction q(*admin);
        return q.exec_params("SELECT 1 FROM pg_stat_activity WHERE application_name = $1", app)
            .empty();
      },
      10s));

  auto after = on_each(pool, size, [&](pqxx::connection& c) {
    pqxx::work w(c);
    w.exec("SELECT 1");
    w.commit();
    return pid(c);
  });
  for (const auto& a : after) {
    CAPTURE(a);
    CHECK(a.find("error") == std::string::npos);
    CHECK_FALSE(first.contains(a));
  }
}
