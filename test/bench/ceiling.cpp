#include "ceiling.hpp"

#include "queues/amqp.hpp"

#include <chrono>
#include <random>
#include <stdexcept>

namespace jobs::bench {

namespace {

using clock = std::chrono::steady_clock;

// Reads confirms until at most `allowed` remain unconfirmed; returns how many remain.
long read_confirms(amqp_connection& c, long unconfirmed, long& acked_upto, long allowed) {
  while (unconfirmed > allowed) {
    amqp_frame_t f;
    amqp_connection::check_status(amqp_simple_wait_frame(c.raw(), &f), "wait for confirms");
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) throw std::runtime_error("broker nacked");
    if (f.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
    auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    long tag = static_cast<long>(m->delivery_tag);
    long settled = m->multiple ? tag - acked_upto : 1;
    acked_upto = std::max(acked_upto, tag);
    unconfirmed -= settled;
  }
  return unconfirmed;
}

}  // namespace

ceiling measure_ceiling(const std::string& amqp_url, int messages, std::size_t message_bytes,
                        int window) {
  amqp_connection c(parse_amqp_url(amqp_url), 30);
  constexpr auto ch = amqp_connection::channel;
  auto queue = "bench.ceiling." + std::to_string(std::random_device{}());
  amqp_table_entry_t arg;
  arg.key = amqp_cstring_bytes("x-queue-type");
  arg.value.kind = AMQP_FIELD_KIND_UTF8;
  arg.value.value.bytes = amqp_cstring_bytes("quorum");
  amqp_queue_declare(c.raw(), ch, as_bytes(queue), 0, 1, 0, 0, amqp_table_t{1, &arg});
  c.check_rpc("queue.declare");

  ceiling out;
  std::string body(message_bytes, 'x');
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.content_type = amqp_cstring_bytes("application/json");
  amqp_confirm_select(c.raw(), ch);
  c.check_rpc("confirm.select");
  auto start = clock::now();
  long unconfirmed = 0, acked_upto = 0;
  for (int i = 0; i < messages; ++i) {
    amqp_connection::check_status(amqp_basic_publish(c.raw(), ch, amqp_cstring_bytes(""),
                                                     as_bytes(queue), 0, 0, &props, as_bytes(body)),
                                  "basic.publish");
    unconfirmed = read_confirms(c, unconfirmed + 1, acked_upto, window);
  }
  read_confirms(c, unconfirmed, acked_upto, 0);
  out.publish_per_s = messages / std::chrono::duration<double>(clock::now() - start).count();

  amqp_basic_qos(c.raw(), ch, 0, 100, 0);
  c.check_rpc("basic.qos");
  amqp_basic_consume(c.raw(), ch, as_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  c.check_rpc("basic.consume");
  start = clock::now();
  for (int i = 0; i < messages; ++i) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c.raw());
    auto r = amqp_consume_message(c.raw(), &env, nullptr, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("consume failed");
    amqp_connection::check_status(amqp_basic_ack(c.raw(), ch, env.delivery_tag, 0), "basic.ack");
    amqp_destroy_envelope(&env);
  }
  out.consume_per_s = messages / std::chrono::duration<double>(clock::now() - start).count();
  amqp_queue_delete(c.raw(), ch, as_bytes(queue), 0, 0);
  c.check_rpc("queue.delete");
  return out;
}

}  // namespace jobs::bench
