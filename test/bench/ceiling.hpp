#pragma once
// The broker's own limit, measured the way the platform uses it: persistent
// messages of the given size published with confirms (pipelined: up to
// `window` unconfirmed) to a fresh quorum queue, then consumed with manual
// acks (prefetch 100, one ack per message). rabbitmq-c, nothing else in
// the path. The queue is deleted afterwards.

#include <string>

namespace jobs::bench {

struct ceiling {
  double publish_per_s = 0;
  double consume_per_s = 0;
};

ceiling measure_ceiling(const std::string& amqp_url, int messages, std::size_t message_bytes,
                        int window = 1000);

}  // namespace jobs::bench
