// ctest-labels: scaling cluster
// The platform on a three-node RabbitMQ cluster (scripts/lib/test-cluster):
// quorum queues replicated on all three nodes with their leaders spread, the
// API and two workers given the broker address list, jobs submitted continuously while the node
// leading the `processing` queue is killed (SIGKILL). Every job that got a 202 must end
// `succeeded`: the test prints `lost=0`.
#include "common/db.hpp"
#include "queues/brokers.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <sstream>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

// Runs scripts/lib/test-cluster ARGS; returns its stdout (trimmed), fails the test if it fails.
std::string cluster_cmd(const std::string& args) {
  auto cmd = std::string(JOBS_SOURCE_DIR) + "/scripts/lib/test-cluster " + args;
  std::FILE* f = ::popen(cmd.c_str(), "r");
  REQUIRE(f);
  std::string out;
  std::array<char, 512> buf{};
  while (auto n = std::fread(buf.data(), 1, buf.size(), f)) out.append(buf.data(), n);
  int rc = ::pclose(f);
  REQUIRE_MESSAGE(rc == 0, "test-cluster ", args, " failed (", rc, ")");
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// The three nodes, stopped when the test ends however it ends.
struct cluster {
  std::string dir;
  std::string urls;
  explicit cluster(std::string d) : dir(std::move(d)) { urls = cluster_cmd("start " + dir); }
  ~cluster() {
    std::string cmd = std::string(JOBS_SOURCE_DIR) + "/scripts/lib/test-cluster stop " + dir;
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  }
};

// Submits jobs in a loop until told to stop; keeps the ids of the 202s.
struct submitter {
  std::atomic<bool> stop{false};
  std::atomic<long> refused{0};
  std::mutex mu;
  std::set<std::string> accepted;
  std::thread thread;

  submitter(int port, const std::string& key) {
    thread = std::thread([this, port, key] {
      const std::string body =
          R"({"queue":"processing","type":"test.count","payload":{"sleep_ms":10}})";
      std::unique_ptr<http_client> h;
      while (!stop) {
        try {
          if (!h) h = std::make_unique<http_client>(port);
          auto r = h->post_json("/v1/jobs", body, key);
          if (r.status == 202) {
            std::lock_guard lk(mu);
            accepted.insert(std::string(r.json().at("id").as_string()));
          } else {
            ++refused;  // 503 while no broker confirms: not accepted, not counted
            std::this_thread::sleep_for(50ms);
          }
        } catch (const std::exception&) {
          ++refused;
          h.reset();
          std::this_thread::sleep_for(50ms);
        }
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  ~submitter() { finish(); }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  std::size_t count() {
    std::lock_guard lk(mu);
    return accepted.size();
  }
};

long not_succeeded(const std::string& pg_url, const std::set<std::string>& ids) {
  auto c = pg_connect(pg_url);
  pqxx::nontransaction n(*c);
  std::set<std::string> ok;
  for (const auto& row : n.exec("SELECT id::text FROM jobs WHERE state = 'succeeded'"))
    ok.insert(row[0].as<std::string>());
  long lost = 0;
  for (const auto& id : ids) lost += ok.contains(id) ? 0 : 1;
  return lost;
}

}  // namespace

TEST_CASE("a RabbitMQ node dies mid-run: no job that got a 202 is lost") {
  scratch s;
  cluster c(require_env("JOBS_TEST_DIR") + "/cluster-" + s.name);
  // "amqp://guest:guest@127.0.0.1:P1/,127.0.0.1:P2,127.0.0.1:P3": the nodes' AMQP ports.
  std::vector<std::string> ports;
  for (auto at = c.urls.find("127.0.0.1:"); at != std::string::npos;
       at = c.urls.find("127.0.0.1:", at + 1)) {
    auto port = c.urls.substr(at + 10, c.urls.find_first_of("/,", at + 10) - at - 10);
    ports.push_back(port);
  }
  REQUIRE(ports.size() == 3);
  // The address list as a process would be given it, node `first` (1..3) first.
  auto list_from = [&](int first) {
    std::string l = "amqp://guest:guest@127.0.0.1:" + ports[first - 1] + "/";
    for (int k = 1; k < 3; ++k) l += ",127.0.0.1:" + ports[(first - 1 + k) % 3];
    return l;
  };

  // The platform's topology, declared once; the cluster's `balanced` leader
  // locator spreads the queues' leaders over the nodes.
  std::string why;
  bool declared = wait_until(
      [&] {
        try {
          auto conn = broker_list(list_from(1)).connect(30);
          declare_topology(*conn, topology_options{10});
          return true;
        } catch (const amqp_error& e) {
          why = e.what();
          std::this_thread::sleep_for(500ms);
          return false;
        }
      },
      30s);
  REQUIRE_MESSAGE(declared, "declaring the topology on node 1: ", why);
  auto queues = cluster_cmd("queues " + c.dir);
  MESSAGE("queues (name type leader members):\n", queues);
  // Quorum queues with a member on each of the three nodes.
  std::set<std::string> leaders;
  for (const auto* q : {"email", "processing", "webhooks", "jobs.dead"}) {
    auto at = queues.find(std::string(q) + " quorum ");
    REQUIRE_MESSAGE(at != std::string::npos, q, " is not a quorum queue:\n", queues);
    std::istringstream line(queues.substr(at, queues.find('\n', at) - at));
    std::string name, type, leader;
    std::set<std::string> members;
    line >> name >> type >> leader;
    leaders.insert(leader);
    for (std::string m; line >> m;) members.insert(m);
    const std::set<std::string> all{"1", "2", "3"};
    CHECK_MESSAGE(members == all, q, " members: ", line.str());
  }
  CHECK_MESSAGE(leaders.size() > 1, "every queue leader on one node:\n", queues);

  // The API and the first worker start on the node leading `processing` (the
  // one killed below); the second worker on another node, which survives.
  auto leader = std::stoi(cluster_cmd("leader " + c.dir + " processing"));
  const std::map<std::string, std::string> env{{"JOBS_AMQP_URL", list_from(leader)},
                                               {"JOBS_AMQP_HEARTBEAT_S", "5"},
                                               {"JOBS_WORKER_LEASE_MS", "3000"}};
  platform p(s, {"processing"}, env, true);
  p.add_worker("processing", {{"JOBS_AMQP_URL", list_from(leader % 3 + 1)}});
  auto key = create_key(s.pg_url, "acme");

  // The queue figures are read through the list too (they once took the
  // whole list for one URL, its other nodes for the vhost).
  http_client admin(p.port);
  auto figures = admin.get("/v1/queues", key);
  CHECK_MESSAGE(figures.status == 200, figures.body);

  submitter sub(p.port, key);
  REQUIRE(wait_until([&] { return sub.count() >= 100; }, 30s));
  auto before = sub.count();
  MESSAGE("killing node ", leader, " (leader of processing) after ", before, " accepted jobs");
  cluster_cmd("kill " + c.dir + " " + std::to_string(leader));
  // Carry on through the other nodes: more jobs accepted after the kill.
  bool carried_on = wait_until([&] { return sub.count() >= before + 200; }, 60s);
  std::this_thread::sleep_for(5s);  // and keep going a while on the two nodes left
  sub.finish();
  CHECK_MESSAGE(carried_on, "only ", sub.count() - before, " jobs accepted after the kill");
  // And from another node once the first is gone.
  CHECK(wait_until([&] { return admin.get("/v1/queues", key).status == 200; }, 30s));
  MESSAGE("new leader: ", cluster_cmd("leader " + c.dir + " processing"));

  auto ids = sub.accepted;
  wait_until([&] { return not_succeeded(s.pg_url, ids) == 0; }, 90s);
  long lost = not_succeeded(s.pg_url, ids);
  MESSAGE("accepted=", ids.size(), " refused=", sub.refused.load(), " lost=", lost);
  std::printf("lost=%ld\n", lost);
  CHECK(lost == 0);
  CHECK(ids.size() > before);
}
