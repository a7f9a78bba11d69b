#pragma once
// basic.publish on the wire, many messages in one write (queues/publisher.hpp).
//
// rabbitmq-c's amqp_basic_publish sends each message as three send() calls
// (method, content header, body): at a few jobs per group commit that was
// three of the API's ~15 system calls per job. The publisher instead
// encodes the frames of everything it has to send (rabbitmq-c's own
// encoders for the method's arguments and the properties; the frame
// envelope of AMQP 0-9-1 §4.2.3 around them) and writes them with one
// send(). On a plain TCP connection only: over TLS the bytes must go
// through rabbitmq-c's socket, so amqps:// keeps amqp_basic_publish.

#include <amqp.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace jobs {

/// Appends the frames of one basic.publish on `channel` (method, content
/// header, then the body in frames of at most `frame_max` bytes each) to
/// `out`. Returns false, leaving `out` as it was, if the properties do not
/// encode (then send it with amqp_basic_publish).
bool append_publish(std::string& out, amqp_channel_t channel, std::string_view exchange,
                    std::string_view routing_key, bool mandatory,
                    const amqp_basic_properties_t& props, std::string_view body,
                    std::size_t frame_max);

/// Writes all of `data` to the non-blocking socket `fd`. While the socket is
/// full (the broker not reading: a resource alarm blocks publishers), calls
/// `waiting()` every `slice` so the caller can expire what is overdue; it
/// returns false to give up. Throws amqp_error on a socket error or when
/// given up.
void send_all(int fd, std::string_view data, std::chrono::milliseconds slice,
              const std::function<bool()>& waiting);

}  // namespace jobs
