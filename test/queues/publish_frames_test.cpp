#include "queues/publish_frames.hpp"
#include "queues/amqp.hpp"

#include <amqp_framing.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace jobs;

namespace {

struct frame {
  int type;
  int channel;
  std::string payload;
};

std::uint64_t be(const std::string& s, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Splits `wire` into frames, checking each envelope.
std::vector<frame> parse(const std::string& wire) {
  std::vector<frame> out;
  std::size_t at = 0;
  while (at < wire.size()) {
    REQUIRE(wire.size() - at >= 8);
    auto size = be(wire, at + 3, 4);
    REQUIRE(wire.size() - at >= 8 + size);
    CHECK(static_cast<unsigned char>(wire[at + 7 + size]) == AMQP_FRAME_END);
    out.push_back({static_cast<unsigned char>(wire[at]), static_cast<int>(be(wire, at + 1, 2)),
                   wire.substr(at + 7, size)});
    at += 8 + size;
  }
  return out;
}

std::string text(amqp_bytes_t b) { return {static_cast<const char*>(b.bytes), b.len}; }

}  // namespace

TEST_CASE(
    "append_publish: frames rabbitmq-c's own decoders read back, the body split by frame_max") {
  amqp_table_entry_t header{};
  header.key = amqp_cstring_bytes("traceparent");
  header.value.kind = AMQP_FIELD_KIND_UTF8;
  header.value.value.bytes =
      amqp_cstring_bytes("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                 AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  props.content_type = amqp_cstring_bytes("application/json");
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.message_id = amqp_cstring_bytes("0190b6d0-0000-7000-8000-000000000001");
  props.headers = {1, &header};
  std::string body(10000, 'x');
  body[0] = '{';
  body[9999] = '}';

  std::string wire = "prefix";  // appended to, not replaced
  REQUIRE(append_publish(wire, 3, "jobs", "email", true, props, body, 4096));
  CHECK(wire.starts_with("prefix"));
  auto frames = parse(wire.substr(6));
  // Method, content header, then 10,000 bytes in frames of 4,096 - 8.
  REQUIRE(frames.size() == 5);
  for (const auto& f : frames) CHECK(f.channel == 3);
  CHECK(frames[0].type == AMQP_FRAME_METHOD);
  CHECK(frames[1].type == AMQP_FRAME_HEADER);
  std::string joined;
  for (std::size_t i = 2; i < frames.size(); ++i) {
    CHECK(frames[i].type == AMQP_FRAME_BODY);
    CHECK(frames[i].payload.size() <= 4096 - 8);
    joined += frames[i].payload;
  }
  CHECK(joined == body);

  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  auto& m = frames[0].payload;
  CHECK(be(m, 0, 4) == AMQP_BASIC_PUBLISH_METHOD);
  void* decoded = nullptr;
  REQUIRE(amqp_decode_method(AMQP_BASIC_PUBLISH_METHOD, &pool, {m.size() - 4, m.data() + 4},
                             &decoded) == AMQP_STATUS_OK);
  auto* pub = static_cast<amqp_basic_publish_t*>(decoded);
  CHECK(text(pub->exchange) == "jobs");
  CHECK(text(pub->routing_key) == "email");
  CHECK(pub->mandatory == 1);
  CHECK(pub->immediate == 0);

  auto& h = frames[1].payload;
  CHECK(be(h, 0, 2) == AMQP_BASIC_CLASS);
  CHECK(be(h, 2, 2) == 0);
  CHECK(be(h, 4, 8) == body.size());
  REQUIRE(amqp_decode_properties(AMQP_BASIC_CLASS, &pool, {h.size() - 12, h.data() + 12},
                                 &decoded) == AMQP_STATUS_OK);
  auto* p = static_cast<amqp_basic_properties_t*>(decoded);
  CHECK(p->_flags == props._flags);
  CHECK(text(p->content_type) == "application/json");
  CHECK(p->delivery_mode == AMQP_DELIVERY_PERSISTENT);
  CHECK(text(p->message_id) == "0190b6d0-0000-7000-8000-000000000001");
  REQUIRE(p->headers.num_entries == 1);
  CHECK(text(p->headers.entries[0].key) == "traceparent");
  CHECK(text(p->headers.entries[0].value.value.bytes) == text(header.value.value.bytes));
  empty_amqp_pool(&pool);

  SUBCASE("an empty body has no body frame") {
    std::string empty;
    REQUIRE(append_publish(empty, 1, "jobs", "email", true, props, "", 131072));
    CHECK(parse(empty).size() == 2);
  }
}

TEST_CASE("append_publish: properties too large to encode leave the buffer as it was") {
  std::string huge(200000, 'v');
  amqp_table_entry_t header{};
  header.key = amqp_cstring_bytes("big");
  header.value.kind = AMQP_FIELD_KIND_UTF8;
  header.value.value.bytes = {huge.size(), huge.data()};
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_HEADERS_FLAG;
  props.headers = {1, &header};
  std::string wire = "kept";
  CHECK_FALSE(append_publish(wire, 1, "jobs", "email", true, props, "{}", 131072));
  CHECK(wire == "kept");
}

TEST_CASE("send_all: writes everything; a peer that stops reading is given up on") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
  int small = 4096;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

  send_all(sv[0], "hello", std::chrono::milliseconds(10), [] { return true; });
  char got[5];
  REQUIRE(::read(sv[1], got, 5) == 5);
  CHECK(std::string(got, 5) == "hello");

  // Nobody reads sv[1]: the socket fills, waiting() is asked, and a no ends it.
  int asked = 0;
  std::string lots(1 << 20, 'z');
  CHECK_THROWS_AS(send_all(sv[0], lots, std::chrono::milliseconds(10), [&] { return ++asked < 3; }),
                  amqp_error);
  CHECK(asked == 3);

  // A closed peer is an error, not a hang.
  ::close(sv[1]);
  CHECK_THROWS_AS(send_all(sv[0], "more", std::chrono::milliseconds(10), [] { return true; }),
                  amqp_error);
  ::close(sv[0]);
}
