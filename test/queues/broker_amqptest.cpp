// queues/: topology, confirmed publishing and consuming against a live RabbitMQ.
#include "common/job.hpp"
#include "queues/consumer.hpp"
#include "queues/message.hpp"
#include "queues/publisher.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <future>
#include <sstream>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

std::pair<bool, std::string> publish_and_wait(publisher& p, const std::string& routing_key,
                                              const std::string& body) {
  auto done = std::make_shared<std::promise<std::pair<bool, std::string>>>();
  auto f = done->get_future();
  p.publish(routing_key, "m-" + body.substr(0, 8), body, [done](bool ok, std::string_view why) {
    done->set_value({ok, std::string(why)});
  });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

std::vector<delivery> receive(consumer& c, std::size_t n) {
  std::vector<delivery> got;
  wait_until(
      [&] {
        c.poll(got, 50, -1);
        return got.size() >= n;
      },
      10s);
  return got;
}

}  // namespace

// Deleting a rolled-over 512 MiB log held every fsync on a discard-mounted
// disk for 100-200 ms (deploy/rabbitmq/20-jobs.conf): the brokers the
// scripts start (tests, scripts/run, scripts/bench) and the one compose.yaml
// configures roll theirs at 16 MiB.
TEST_CASE("the broker's quorum-queue log rolls over at 16 MiB, here and in deploy/") {
  auto live = command_output(std::string(JOBS_SOURCE_DIR) +
                             "/scripts/lib/test-services rabbitmqctl eval "
                             "'application:get_env(ra, wal_max_size_bytes).' 2>&1");
  CHECK_MESSAGE(live.find("{ok,16777216}") != std::string::npos, live);
  std::ifstream conf(std::string(JOBS_SOURCE_DIR) + "/deploy/rabbitmq/20-jobs.conf");
  std::stringstream text;
  text << conf.rdbuf();
  CHECK(text.str().find("\nraft.wal_max_size_bytes = 16777216\n") != std::string::npos);
}

TEST_CASE("topology is declared idempotently with quorum queues and a delivery limit") {
  scratch s;
  auto addr = parse_amqp_url(s.amqp_url);
  amqp_connection c(addr, 30);
  declare_topology(c, {10});
  declare_topology(c, {10});  // again: no error
  for (auto q : known_queues) CHECK(inspect_queue(c, q).messages == 0);
  CHECK(inspect_queue(c, dead_queue).messages == 0);
  // Declaring with another delivery limit: the broker refuses to change a
  // queue's arguments; the queues are kept as they are (a warning), and the
  // connection goes on.
  CHECK_NOTHROW(declare_topology(c, {3}));
  for (auto q : known_queues) CHECK(inspect_queue(c, q).messages == 0);
}

TEST_CASE("a close by the broker carries its reply code; the channel can be opened again") {
  scratch s;
  amqp_connection c(parse_amqp_url(s.amqp_url), 30);
  declare_topology(c, {10});
  try {
    inspect_queue(c, "no-such-queue");
    FAIL("a passive declare of a missing queue succeeded");
  } catch (const amqp_error& e) {
    CHECK(e.reply_code == AMQP_NOT_FOUND);
    CHECK(e.channel_closed);
  }
  c.reopen_channel();
  CHECK(inspect_queue(c, "processing").messages == 0);
  // Not the broker's: no reply code.
  amqp_error plain("x");
  CHECK(plain.reply_code == 0);
  CHECK_FALSE(plain.channel_closed);
}

namespace {
// Publishes messages with ids `first`..`first + n - 1` straight to `queue`
// (the default exchange) and waits for the broker's confirm of the last: a
// quorum queue confirms once the message is in its log, its bound applied.
void publish_confirmed(amqp_connection& c, std::string_view queue, int first, int n) {
  auto* raw = c.raw();
  constexpr auto ch = amqp_connection::channel;
  amqp_confirm_select(raw, ch);
  c.check_rpc("confirm.select");
  std::vector<std::string> ids;
  for (int i = first; i < first + n; ++i) ids.push_back(std::to_string(i));
  for (const auto& id : ids) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.message_id = amqp_cstring_bytes(id.c_str());
    props.delivery_mode = 2;
    amqp_connection::check_status(
        amqp_basic_publish(raw, ch, amqp_cstring_bytes(""), as_bytes(queue), 0, 0, &props,
                           amqp_cstring_bytes("{}")),
        "basic.publish");
  }
  uint64_t acked = 0;
  while (acked < static_cast<uint64_t>(n)) {
    amqp_frame_t f;
    timeval tv{10, 0};
    amqp_connection::check_status(amqp_simple_wait_frame_noblock(raw, &f, &tv), "wait for acks");
    REQUIRE(f.frame_type == AMQP_FRAME_METHOD);
    REQUIRE(f.payload.method.id == AMQP_BASIC_ACK_METHOD);
    acked = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded)->delivery_tag;
  }
}
}  // namespace

TEST_CASE("jobs.dead keeps the newest dead letters up to its bound; an older one is kept as is") {
  scratch s;
  auto addr = parse_amqp_url(s.amqp_url);
  {
    amqp_connection c(addr, 30);
    declare_topology(c, {10, 3});
    publish_confirmed(c, dead_queue, 0, 5);
    CHECK(inspect_queue(c, dead_queue).messages == 3);
  }
  // The oldest went (drop-head): the newest three are left.
  consumer dead(addr, 30, std::string(dead_queue), 10, {10, 3});
  auto got = receive(dead, 3);
  REQUIRE(got.size() == 3);
  CHECK(got[0].message_id == "2");
  CHECK(got[1].message_id == "3");
  CHECK(got[2].message_id == "4");

  // A jobs.dead declared without a bound (before JOBS_DEAD_LETTER_MAX): the
  // broker refuses to change its arguments; the topology keeps it, warns,
  // and the connection goes on.
  scratch old;
  amqp_connection c(parse_amqp_url(old.amqp_url), 30);
  amqp_table_entry_t quorum;
  quorum.key = amqp_cstring_bytes("x-queue-type");
  quorum.value.kind = AMQP_FIELD_KIND_UTF8;
  quorum.value.value.bytes = amqp_cstring_bytes("quorum");
  amqp_queue_declare(c.raw(), amqp_connection::channel, as_bytes(dead_queue), 0, 1, 0, 0,
                     amqp_table_t{1, &quorum});
  c.check_rpc("queue.declare");
  CHECK_NOTHROW(declare_topology(c, {10, 3}));
  CHECK_NOTHROW(declare_topology(c, {10, 3}));
  publish_confirmed(c, dead_queue, 0, 5);
  CHECK(inspect_queue(c, dead_queue).messages == 5);
  for (auto q : known_queues) CHECK(inspect_queue(c, q).messages == 0);
}

TEST_CASE("a confirmed message is consumed, acked and gone") {
  scratch s;
  publisher p({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return p.connected(); }, 10s));
  auto body =
      encode_job_message({"01a20186-a36f-7fa4-aba8-185e529e034e", "acme", "processing", "noop"});
  auto [ok, why] = publish_and_wait(p, "processing", body);
  REQUIRE_MESSAGE(ok, why);

  auto addr = parse_amqp_url(s.amqp_url);
  {
    consumer c(addr, 30, "processing", 4, {10});
    auto got = receive(c, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == body);
    CHECK_FALSE(got[0].redelivered);
    auto m = decode_job_message(got[0].body);
    REQUIRE(m);
    CHECK(m->type == "noop");
    // Not acked: closing the connection returns it to the queue.
  }
  {
    consumer c(addr, 30, "processing", 4, {10});
    auto got = receive(c, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].redelivered);
    CHECK(got[0].delivery_count >= 1);
    c.ack(got[0].tag);
  }
  amqp_connection check(addr, 30);
  CHECK(wait_until([&] { return inspect_queue(check, "processing").messages == 0; }, 5s));
}

TEST_CASE("many messages are confirmed in a pipeline and a rejected one is dead-lettered") {
  scratch s;
  publisher p({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return p.connected(); }, 10s));
  constexpr int n = 2000;
  std::atomic<int> ok{0}, bad{0};
  for (int i = 0; i < n; ++i)
    p.publish("processing", std::to_string(i), "{}",
              [&](bool good, std::string_view) { ++(good ? ok : bad); });
  REQUIRE(wait_until([&] { return ok + bad == n; }, 30s));
  CHECK(ok == n);

  auto addr = parse_amqp_url(s.amqp_url);
  consumer c(addr, 30, "processing", 100, {10});
  auto got = receive(c, 1);
  REQUIRE(!got.empty());
  c.reject(got[0].tag, false);
  amqp_connection check(addr, 30);
  CHECK(wait_until([&] { return inspect_queue(check, dead_queue).messages == 1; }, 10s));
}

TEST_CASE("messages written many to a send arrive whole and in order: ids, headers, long bodies") {
  // The publisher encodes its frames itself on plain TCP (queues/publish_frames.hpp).
  scratch s;
  publisher p({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return p.connected(); }, 10s));
  constexpr int n = 300;
  std::vector<std::string> bodies;
  for (int i = 0; i < n; ++i) {
    // Every 50th body spans three frames (frame_max 128 KiB); the rest are small.
    std::string b = "{\"n\":" + std::to_string(i) + ",\"pad\":\"";
    b.append(i % 50 == 7 ? 300000 : i % 13, static_cast<char>('a' + i % 26));
    bodies.push_back(b + "\"}");
  }
  std::atomic<int> ok{0}, bad{0};
  for (int i = 0; i < n; ++i) {
    publisher::headers extra;
    if (i % 2)
      extra.emplace_back("traceparent",
                         "00-" + std::string(32, 'a') + "-" + std::string(16, 'b') + "-01");
    p.publish(
        "processing", "id-" + std::to_string(i), bodies[i],
        [&](bool good, std::string_view) { ++(good ? ok : bad); }, std::move(extra));
  }
  REQUIRE(wait_until([&] { return ok + bad == n; }, 30s));
  CHECK(ok == n);

  consumer c(parse_amqp_url(s.amqp_url), 30, "processing", 400, {10});
  auto got = receive(c, n);
  REQUIRE(got.size() == n);
  for (int i = 0; i < n; ++i) {
    CHECK(got[i].message_id == "id-" + std::to_string(i));
    CHECK(got[i].body == bodies[i]);
    CHECK(got[i].headers.contains("traceparent") == (i % 2 == 1));
  }
}

TEST_CASE("an unroutable message is reported as not confirmed") {
  scratch s;
  publisher p({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return p.connected(); }, 10s));
  auto [ok, why] = publish_and_wait(p, "no-such-queue", R"({"x":1})");
  CHECK_FALSE(ok);
  CHECK(why.find("no queue") != std::string::npos);
}

TEST_CASE("without a broker, publishing fails within the confirm deadline") {
  publisher p(
      {"amqp://guest:guest@127.0.0.1:" + std::to_string(free_port()) + "/", 30, 500ms, {10}});
  auto start = std::chrono::steady_clock::now();
  auto [ok, why] = publish_and_wait(p, "processing", "{}");
  CHECK_FALSE(ok);
  CHECK_FALSE(p.connected());
  CHECK(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("without a broker, each publish fails at its own deadline, not at the end of a backoff") {
  struct outcome {
    std::promise<std::chrono::steady_clock::time_point> at;
    std::chrono::steady_clock::time_point published;
  };
  std::vector<std::unique_ptr<outcome>> sent;  // outlives the publisher's callbacks
  publisher p(
      {"amqp://guest:guest@127.0.0.1:" + std::to_string(free_port()) + "/", 30, 500ms, {10}});
  // By now the reconnect backoff is past a second (100 ms, doubling).
  std::this_thread::sleep_for(2500ms);
  for (int i = 0; i < 3; ++i) {
    auto& o = *sent.emplace_back(std::make_unique<outcome>());
    o.published = std::chrono::steady_clock::now();
    p.publish("processing", "m" + std::to_string(i), "{}", [&o](bool ok, std::string_view) {
      CHECK_FALSE(ok);
      o.at.set_value(std::chrono::steady_clock::now());
    });
    std::this_thread::sleep_for(150ms);  // the later ones join a non-empty pending list
  }
  for (auto& o : sent) {
    auto f = o->at.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto late = f.get() - (o->published + 500ms);
    CHECK(late > -50ms);
    CHECK(late < 1000ms);  // was up to the backoff (seconds) for all but the first
  }
}

TEST_CASE("ack_all settles exactly the tags it is given, with a multiple ack below the held ones") {
  scratch s;
  publisher p({s.amqp_url, 30, 10s, {10}});
  REQUIRE(wait_until([&] { return p.connected(); }, 10s));
  for (int i = 0; i < 5; ++i)
    REQUIRE(publish_and_wait(p, "processing", "{\"n\":" + std::to_string(i) + "}").first);
  auto addr = parse_amqp_url(s.amqp_url);
  {
    consumer c(addr, 30, "processing", 10, {10});
    auto got = receive(c, 5);
    REQUIRE(got.size() == 5);
    // The first two go in one multiple ack (below the held third); the fourth alone.
    c.ack_all({got[3].tag, got[0].tag, got[1].tag});
  }
  // The two not acked come back (ready once the consumer is gone), and nothing else.
  {
    amqp_connection check(addr, 30);
    CHECK(wait_until([&] { return inspect_queue(check, "processing").messages == 2; }, 5s));
  }
  consumer c(addr, 30, "processing", 10, {10});
  auto again = receive(c, 2);
  REQUIRE(again.size() == 2);
  CHECK(again[0].body == "{\"n\":2}");
  CHECK(again[1].body == "{\"n\":4}");
  c.ack_all({again[1].tag, again[0].tag});
  amqp_connection check(addr, 30);
  CHECK(wait_until([&] { return inspect_queue(check, "processing").messages == 0; }, 5s));
}
