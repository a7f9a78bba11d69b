// The publisher's side of the wire (queues/publisher.hpp): messages out,
// confirms and returns in. publisher.cpp: the connection and its loop.
#include "common/log.hpp"
#include "queues/publish_frames.hpp"
#include "queues/publisher.hpp"

#include <poll.h>

namespace jobs {

void publisher::send_pending(std::deque<item>& batch) {
  amqp_basic_properties_t props{};
  props._flags =
      AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.content_type = amqp_cstring_bytes("application/json");
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  std::vector<amqp_table_entry_t> entries;
  // Plain TCP: the frames of many messages go in one send() (queues/publish_frames.hpp).
  bool direct = !conn_->tls();
  auto frame_max = static_cast<std::size_t>(amqp_get_frame_max(conn_->raw()));
  auto flush = [&] {
    if (wire_.empty()) return;
    send_all(conn_->fd(), wire_, std::chrono::milliseconds(100), [&] {
      expire(std::chrono::steady_clock::now());
      return !stopping_.load();
    });
    wire_.clear();
  };
  try {
    while (!batch.empty()) {
      auto& it = batch.front();
      props.message_id = as_bytes(it.message_id);
      entries.clear();
      for (const auto& [key, value] : it.extra) {
        auto& e = entries.emplace_back();
        e.key = as_bytes(key);
        e.value.kind = AMQP_FIELD_KIND_UTF8;
        e.value.value.bytes = as_bytes(value);
      }
      props._flags &= ~AMQP_BASIC_HEADERS_FLAG;
      if (!entries.empty()) {
        props.headers = {static_cast<int>(entries.size()), entries.data()};
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
      }
      if (!direct || !append_publish(wire_, amqp_connection::channel, jobs_exchange, it.routing_key,
                                     /*mandatory=*/true, props, it.body, frame_max)) {
        flush();  // what is encoded goes first: tags follow the order on the wire
        int st = amqp_basic_publish(conn_->raw(), amqp_connection::channel, as_bytes(jobs_exchange),
                                    as_bytes(it.routing_key), /*mandatory=*/1, 0, &props,
                                    as_bytes(it.body));
        if (st != AMQP_STATUS_OK) {
          amqp_connection::check_status(st, "basic.publish");
          throw amqp_error("basic.publish failed");
        }
      }
      // Encoded or sent: if the write below fails, the reconnect sends it again.
      unconfirmed_.emplace(next_tag_++, std::move(it));
      batch.pop_front();
      if (wire_.size() >= wire_flush_bytes) flush();
    }
    flush();
  } catch (...) {
    // Not sent, or not known to be: a new connection sends it and the rest
    // (unconfirmed_ holds what was encoded before; the run loop resends it).
    // A write of ours may have stopped mid-frame: nothing more goes on this
    // connection, not even its closes.
    if (direct) conn_->abandon();
    wire_.clear();
    std::lock_guard lk(mu_);
    for (auto r = batch.rbegin(); r != batch.rend(); ++r) pending_.push_front(std::move(*r));
    throw;
  }
  if (wire_.capacity() > 2 * wire_flush_bytes) std::string().swap(wire_);
}

void publisher::read_confirms(int wait_ms) {
  // Block until the broker or publish() has something, then drain all frames.
  if (!conn_->has_buffered_input()) {
    struct pollfd p[2] = {{conn_->fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    ::poll(p, 2, wait_ms);
  }
  for (;;) {
    // Decoded frames live in the connection's pool until released: without
    // this the API's memory grew by ~30 bytes per confirm (found by the
    // 10-minute RSS soak, scripts/bench --soak). Each frame is done with
    // before the next is read.
    amqp_maybe_release_buffers(conn_->raw());
    amqp_frame_t f;
    timeval zero{0, 0};
    int st = amqp_simple_wait_frame_noblock(conn_->raw(), &f, &zero);
    if (st == AMQP_STATUS_TIMEOUT) return;
    amqp_connection::check_status(st, "wait for confirms");
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
        settle(m->delivery_tag, m->multiple, true, nullptr);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        // A quorum queue nacks while it has no leader, and a channel that
        // published during the election may go on nacking after it (seen on
        // RabbitMQ 3.10). The message stays unconfirmed: a new connection,
        // on the next node, sends it again until its deadline.
        nacked_ = true;
        throw amqp_error("broker refused a message (nack); reconnecting");
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // Unroutable: the broker sends the message back, then acks its tag.
        amqp_message_t msg;
        auto r = amqp_read_message(conn_->raw(), f.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) throw amqp_error("reading a returned message");
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
          returned_[std::string(as_view(msg.properties.message_id))] =
              "no queue for the routing key";
        amqp_destroy_message(&msg);
        break;
      }
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        auto* m = static_cast<amqp_connection_blocked_t*>(f.payload.method.decoded);
        if (!blocked_.exchange(true))
          log_warn("broker blocks publishing (resource alarm); submissions are refused",
                   {{"reason", std::string(as_view(m->reason))}});
        break;
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        if (blocked_.exchange(false)) log_info("broker unblocked publishing");
        break;
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD: throw amqp_error("broker closed the channel");
      default: break;
    }
  }
}

}  // namespace jobs
