#include "queues/consumer.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

namespace jobs {

consumer::consumer(const amqp_address& a, int heartbeat_s, std::string queue, int prefetch,
                   const topology_options& t)
    : consumer(std::make_unique<amqp_connection>(a, heartbeat_s), std::move(queue), prefetch, t) {}

consumer::consumer(std::unique_ptr<amqp_connection> c, std::string queue, int prefetch,
                   const topology_options& t, bool start)
    : conn_(std::move(c)), queue_(std::move(queue)) {
  declare_topology(*conn_, t);
  amqp_basic_qos(conn_->raw(), amqp_connection::channel, 0, static_cast<uint16_t>(prefetch), 0);
  conn_->check_rpc("basic.qos");
  if (start) consume();
}

void consumer::consume() {
  if (consuming_) return;
  auto* ok = amqp_basic_consume(conn_->raw(), amqp_connection::channel, as_bytes(queue_),
                                amqp_empty_bytes, 0, /*no_ack=*/0, 0, amqp_empty_table);
  conn_->check_rpc("basic.consume");
  tag_ = std::string(as_view(ok->consumer_tag));
  consuming_ = true;
}

void consumer::poll(std::vector<delivery>& out, int wait_ms, int wake_fd) {
  if (!conn_->has_buffered_input()) {
    struct pollfd p[2] = {{conn_->fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    ::poll(p, wake_fd >= 0 ? 2 : 1, wait_ms);
  }
  // Drain what has arrived; a zero timeout never blocks (and still services heartbeats).
  timeval zero{0, 0};
  while (read_one(out, &zero)) {
  }
}

bool consumer::read_one(std::vector<delivery>& out, timeval* timeout) {
  amqp_envelope_t env;
  amqp_maybe_release_buffers(conn_->raw());
  auto r = amqp_consume_message(conn_->raw(), &env, timeout, 0);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    delivery d;
    d.tag = env.delivery_tag;
    d.redelivered = env.redelivered;
    d.body.assign(as_view(env.message.body));
    const auto& props = env.message.properties;
    if (props._flags & AMQP_BASIC_MESSAGE_ID_FLAG) d.message_id.assign(as_view(props.message_id));
    if (props._flags & AMQP_BASIC_HEADERS_FLAG) {
      for (int i = 0; i < props.headers.num_entries; ++i) {
        const auto& e = props.headers.entries[i];
        if (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES)
          d.headers[std::string(as_view(e.key))] = std::string(as_view(e.value.value.bytes));
        if (as_view(e.key) != "x-delivery-count") continue;
        switch (e.value.kind) {
          case AMQP_FIELD_KIND_I64: d.delivery_count = static_cast<long>(e.value.value.i64); break;
          case AMQP_FIELD_KIND_I32: d.delivery_count = e.value.value.i32; break;
          case AMQP_FIELD_KIND_U32: d.delivery_count = e.value.value.u32; break;
          case AMQP_FIELD_KIND_I16: d.delivery_count = e.value.value.i16; break;
          case AMQP_FIELD_KIND_U16: d.delivery_count = e.value.value.u16; break;
          case AMQP_FIELD_KIND_I8: d.delivery_count = e.value.value.i8; break;
          case AMQP_FIELD_KIND_U8: d.delivery_count = e.value.value.u8; break;
          default: break;
        }
      }
    }
    amqp_destroy_envelope(&env);
    held_.insert(d.tag);
    out.push_back(std::move(d));
    return true;
  }
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
    return false;
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
    // A frame other than a delivery: read it to see whether we lost the channel.
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(conn_->raw(), &f, timeout);
    if (st == AMQP_STATUS_TIMEOUT) return false;
    amqp_connection::check_status(st, "consumer frame");
    if (f.frame_type == AMQP_FRAME_METHOD) {
      switch (f.payload.method.id) {
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: throw amqp_error("broker closed the consumer channel");
        case AMQP_BASIC_CANCEL_METHOD:
          throw amqp_error("broker cancelled the consumer (queue deleted?)");
        default: break;
      }
    }
    return true;
  }
  conn_->check_rpc("basic.consume");
  throw amqp_error("consume failed");
}

void consumer::ack(uint64_t tag, bool multiple) {
  if (multiple)
    held_.erase(held_.begin(), held_.upper_bound(tag));
  else
    held_.erase(tag);
  amqp_connection::check_status(
      amqp_basic_ack(conn_->raw(), amqp_connection::channel, tag, multiple), "basic.ack");
}

void consumer::ack_all(std::vector<uint64_t> tags) {
  if (tags.empty()) return;
  std::sort(tags.begin(), tags.end());
  for (auto t : tags) held_.erase(t);
  // Every tag below the lowest one still held is ours to settle.
  auto below =
      held_.empty() ? tags.end() : std::lower_bound(tags.begin(), tags.end(), *held_.begin());
  if (below - tags.begin() > 1) {
    ack(*(below - 1), true);
  } else if (below != tags.begin()) {
    ack(tags.front());
  }
  for (auto it = below; it != tags.end(); ++it) ack(*it);
}

void consumer::reject(uint64_t tag, bool requeue) {
  held_.erase(tag);
  amqp_connection::check_status(
      amqp_basic_nack(conn_->raw(), amqp_connection::channel, tag, 0, requeue), "basic.nack");
}

void consumer::dead_letter(const delivery& d, std::string_view reason) {
  std::string why(reason);
  amqp_table_entry_t headers[2];
  headers[0].key = amqp_cstring_bytes("x-dead-reason");
  headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
  headers[0].value.value.bytes = as_bytes(why);
  headers[1].key = amqp_cstring_bytes("x-original-queue");
  headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
  headers[1].value.value.bytes = as_bytes(queue_);
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.headers = amqp_table_t{2, headers};
  if (!d.message_id.empty()) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = as_bytes(d.message_id);
  }
  amqp_connection::check_status(
      amqp_basic_publish(conn_->raw(), amqp_connection::channel, as_bytes(dead_exchange),
                         as_bytes(queue_), 0, 0, &props, as_bytes(d.body)),
      "basic.publish to the dead-letter exchange");
  ack(d.tag);
}

void consumer::sever() { ::shutdown(conn_->fd(), SHUT_RDWR); }

void consumer::cancel() {
  if (!consuming_) return;
  consuming_ = false;
  amqp_basic_cancel(conn_->raw(), amqp_connection::channel, as_bytes(tag_));
  // Deliveries already on the wire before cancel-ok are still ours to handle.
  conn_->check_rpc("basic.cancel");
}

}  // namespace jobs
