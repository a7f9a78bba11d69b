#include "queues/publish_frames.hpp"

#include "queues/amqp.hpp"

#include <amqp_framing.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace jobs {

namespace {

constexpr std::size_t frame_overhead = 8;  // type, channel, size; frame-end

void put16(std::string& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v);
}

void put32(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

void put64(std::string& out, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[at + i] = static_cast<char>(v >> (56 - 8 * i));
}

// Opens a frame of `type` at the end of `out` with room for `room` payload
// bytes; returns where the payload starts. close_frame() fixes its size.
std::size_t open_frame(std::string& out, std::uint8_t type, amqp_channel_t channel,
                       std::size_t room) {
  auto at = out.size();
  out.resize(at + 7 + room);
  out[at] = static_cast<char>(type);
  put16(out, at + 1, channel);
  return at + 7;
}

void close_frame(std::string& out, std::size_t payload_at, std::size_t len) {
  put32(out, payload_at - 4, static_cast<std::uint32_t>(len));
  out.resize(payload_at + len);
  out.push_back(static_cast<char>(AMQP_FRAME_END));
}

amqp_bytes_t bytes_at(std::string& out, std::size_t at) {
  return {out.size() - at, out.data() + at};
}

}  // namespace

bool append_publish(std::string& out, amqp_channel_t channel, std::string_view exchange,
                    std::string_view routing_key, bool mandatory,
                    const amqp_basic_properties_t& props, std::string_view body,
                    std::size_t frame_max) {
  auto start = out.size();
  amqp_basic_publish_t m{};
  m.exchange = {exchange.size(), const_cast<char*>(exchange.data())};
  m.routing_key = {routing_key.size(), const_cast<char*>(routing_key.data())};
  m.mandatory = mandatory ? 1 : 0;
  // Method: its id, then its arguments (ticket, exchange, routing key, bits).
  auto at =
      open_frame(out, AMQP_FRAME_METHOD, channel, 4 + 8 + exchange.size() + routing_key.size());
  put32(out, at, AMQP_BASIC_PUBLISH_METHOD);
  int n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &m, bytes_at(out, at + 4));
  if (n < 0) {
    out.resize(start);
    return false;
  }
  close_frame(out, at, 4 + static_cast<std::size_t>(n));
  // Content header: class, weight 0, body size, then the property flags and values.
  // The header frame, like every frame, fits in frame_max (rabbitmq-c's limit too).
  std::size_t most = frame_max > frame_overhead + 12 ? frame_max - frame_overhead - 12 : 0;
  for (std::size_t room : {std::min<std::size_t>(1024, most), most}) {
    auto mark = out.size();
    at = open_frame(out, AMQP_FRAME_HEADER, channel, 12 + room);
    put16(out, at, AMQP_BASIC_CLASS);
    put16(out, at + 2, 0);
    put64(out, at + 4, body.size());
    n = amqp_encode_properties(AMQP_BASIC_CLASS, const_cast<amqp_basic_properties_t*>(&props),
                               bytes_at(out, at + 12));
    if (n >= 0) {
      close_frame(out, at, 12 + static_cast<std::size_t>(n));
      break;
    }
    out.resize(mark);
  }
  if (n < 0) {
    out.resize(start);
    return false;
  }
  // Body: as many frames as frame_max needs (none for an empty body).
  auto chunk = frame_max > frame_overhead ? frame_max - frame_overhead : 4096;
  for (std::size_t off = 0; off < body.size(); off += chunk) {
    auto len = std::min(chunk, body.size() - off);
    at = open_frame(out, AMQP_FRAME_BODY, channel, len);
    std::memcpy(out.data() + at, body.data() + off, len);
    close_frame(out, at, len);
  }
  return true;
}

void send_all(int fd, std::string_view data, std::chrono::milliseconds slice,
              const std::function<bool()>& waiting) {
  // waiting() is asked at least every `slice`, whether the socket is full or
  // drains slowly.
  auto next_ask = std::chrono::steady_clock::now() + slice;
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      throw amqp_error(std::string("basic.publish: ") + std::strerror(errno));
    if (n == 0) throw amqp_error("basic.publish: connection closed");
    if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
    if (n < 0) {
      struct pollfd p {
        fd, POLLOUT, 0
      };
      ::poll(&p, 1, static_cast<int>(slice.count()));
    }
    if (auto now = std::chrono::steady_clock::now(); now >= next_ask) {
      if (!waiting()) throw amqp_error("basic.publish: the broker is not reading");
      next_ask = now + slice;
    }
  }
}

}  // namespace jobs
