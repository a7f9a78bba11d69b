#include "queues/amqp.hpp"

#include "common/job.hpp"
#include "common/log.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <boost/url/parse.hpp>

namespace jobs {

amqp_address parse_amqp_url(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || (u->scheme() != "amqp" && u->scheme() != "amqps"))
    throw amqp_error("not an amqp:// or amqps:// URL");
  amqp_address a;
  if (u->scheme() == "amqps") {
    a.tls = true;
    a.port = 5671;
  }
  for (auto p : u->params()) {
    if (!a.tls) throw amqp_error("query parameters are for amqps:// URLs");
    if (p.key == "cacertfile")
      a.ca_file = p.value;
    else if (p.key == "certfile")
      a.cert_file = p.value;
    else if (p.key == "keyfile")
      a.key_file = p.value;
    else if (p.key == "verify" && (p.value == "verify_peer" || p.value == "verify_none"))
      a.verify = p.value == "verify_peer";
    else
      throw amqp_error("unknown amqps:// parameter " + std::string(p.key));
  }
  if (a.cert_file.empty() != a.key_file.empty())
    throw amqp_error("amqps:// needs both certfile and keyfile, or neither");
  if (!u->host().empty()) a.host = u->host();
  if (u->has_port()) a.port = u->port_number();
  if (u->has_userinfo()) {
    a.user = u->user();
    a.password = u->password();
  }
  std::string path = u->path();
  if (path.size() > 1) a.vhost = path.substr(1);
  return a;
}

namespace {

// TLS 1.2 at least; a missing or unreadable file is an error before any connect.
void configure_tls(amqp_socket_t* sock, const amqp_address& a) {
  amqp_ssl_socket_set_verify_peer(sock, a.verify);
  amqp_ssl_socket_set_verify_hostname(sock, a.verify);
  amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST);
  if (!a.ca_file.empty()) {
    if (amqp_ssl_socket_set_cacert(sock, a.ca_file.c_str()) != AMQP_STATUS_OK)
      throw amqp_error("cannot read the CA file " + a.ca_file);
  } else if (SSL_CTX_set_default_verify_paths(
                 static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(sock))) != 1) {
    throw amqp_error("cannot load the system's CA certificates");
  }
  if (!a.cert_file.empty() &&
      amqp_ssl_socket_set_key(sock, a.cert_file.c_str(), a.key_file.c_str()) != AMQP_STATUS_OK)
    throw amqp_error("cannot read the client certificate " + a.cert_file + " or its key");
}

}  // namespace

amqp_connection::amqp_connection(const amqp_address& a, int heartbeat_s)
    : conn_(amqp_new_connection()), tls_(a.tls) {
  auto* sock = a.tls ? amqp_ssl_socket_new(conn_) : amqp_tcp_socket_new(conn_);
  if (!sock) {
    amqp_destroy_connection(conn_);
    throw amqp_error("cannot create a socket");
  }
  try {
    if (a.tls) configure_tls(sock, a);
  } catch (...) {
    amqp_destroy_connection(conn_);
    throw;
  }
  // With TLS, the handshake and the verification happen here, within the timeout.
  timeval tv{connect_timeout.count(), 0};
  int st = amqp_socket_open_noblock(sock, a.host.c_str(), a.port, &tv);
  if (st != AMQP_STATUS_OK) {
    amqp_destroy_connection(conn_);
    std::string why = amqp_error_string2(st);
    if (auto e = a.tls ? ERR_get_error() : 0) {  // e.g. "certificate verify failed"
      char text[256];
      ERR_error_string_n(e, text, sizeof text);
      why += fmt::format(" ({})", text);
    }
    ERR_clear_error();
    throw amqp_error(
        fmt::format("connect to {}:{}{}: {}", a.host, a.port, a.tls ? " (TLS)" : "", why));
  }
  amqp_set_handshake_timeout(conn_, &tv);
  amqp_set_rpc_timeout(conn_, &tv);
  // RabbitMQ tells a client that announces `connection.blocked` when a
  // resource alarm (memory or disk) stops it reading what the connection
  // publishes, and when it reads again (connection.blocked / unblocked):
  // the publisher refuses at once instead of waiting for confirms that
  // cannot come. rabbitmq-c merges this into its own capabilities.
  amqp_table_entry_t capability;
  capability.key = amqp_cstring_bytes("connection.blocked");
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  amqp_table_entry_t property;
  property.key = amqp_cstring_bytes("capabilities");
  property.value.kind = AMQP_FIELD_KIND_TABLE;
  property.value.value.table = {1, &capability};
  amqp_table_t properties{1, &property};
  auto r = amqp_login_with_properties(conn_, a.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE,
                                      heartbeat_s, &properties, AMQP_SASL_METHOD_PLAIN,
                                      a.user.c_str(), a.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    std::string why = "refused";
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
      why = amqp_error_string2(r.library_error);
    else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
      why =
          std::string(as_view(static_cast<amqp_connection_close_t*>(r.reply.decoded)->reply_text));
    amqp_destroy_connection(conn_);
    throw amqp_error(fmt::format("login to {}:{} as {} failed: {}", a.host, a.port, a.user, why));
  }
  amqp_channel_open(conn_, channel);
  try {
    check_rpc("channel.open");
  } catch (...) {
    amqp_destroy_connection(conn_);
    throw;
  }
}

amqp_connection::~amqp_connection() {
  // Best effort: a broken socket makes these fail fast.
  if (!abandoned_) {
    amqp_channel_close(conn_, channel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn_);
}

void amqp_connection::abandon() {
  abandoned_ = true;
  if (int fd = amqp_get_sockfd(conn_); fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

bool amqp_connection::has_buffered_input() const {
  return amqp_frames_enqueued(conn_) || amqp_data_in_buffer(conn_);
}

void amqp_connection::reopen_channel() {
  amqp_channel_close_ok_t ok{};
  check_status(amqp_send_method(conn_, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
               "channel.close-ok");
  amqp_channel_open(conn_, channel);
  check_rpc("channel.open");
}

void amqp_connection::check_status(int status, const char* what) {
  if (status < 0) throw amqp_error(fmt::format("{}: {}", what, amqp_error_string2(status)));
}

void amqp_connection::check_rpc(const char* what) {
  auto r = amqp_get_rpc_reply(conn_);
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return;
    case AMQP_RESPONSE_NONE: throw amqp_error(fmt::format("{}: missing reply", what));
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      throw amqp_error(fmt::format("{}: {}", what, amqp_error_string2(r.library_error)));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        throw amqp_error(fmt::format("{}: channel closed by broker: {} {}", what, m->reply_code,
                                     as_view(m->reply_text)),
                         m->reply_code, true);
      }
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        throw amqp_error(fmt::format("{}: connection closed by broker: {} {}", what, m->reply_code,
                                     as_view(m->reply_text)),
                         m->reply_code, false);
      }
      throw amqp_error(fmt::format("{}: broker error {:#x}", what, r.reply.id));
  }
}

namespace {

amqp_table_entry_t string_entry(const char* key, const char* value) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = amqp_cstring_bytes(value);
  return e;
}

amqp_table_entry_t int_entry(const char* key, int64_t value) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  return e;
}

void declare_quorum_queue(amqp_connection& c, std::string_view name, amqp_table_t args) {
  amqp_queue_declare(c.raw(), amqp_connection::channel, as_bytes(name), 0, 1, 0, 0, args);
  c.check_rpc("queue.declare");
}

// Declares the queue; one declared before with other arguments (the broker
// answers 406 and closes the channel: it never changes a queue's arguments)
// is kept as it is, with a warning, rather than keeping every process from
// connecting.
void declare_or_keep(amqp_connection& c, std::string_view name, amqp_table_t args,
                     std::string_view warning, boost::json::object fields) {
  try {
    declare_quorum_queue(c, name, args);
  } catch (const amqp_error& e) {
    if (!e.channel_closed || e.reply_code != AMQP_PRECONDITION_FAILED) throw;
    c.reopen_channel();
    fields["error"] = e.what();
    log_warn(warning, std::move(fields));
    amqp_queue_declare(c.raw(), amqp_connection::channel, as_bytes(name), 1, 0, 0, 0,
                       amqp_empty_table);
    c.check_rpc("queue.declare passive");
  }
}

}  // namespace

void declare_topology(amqp_connection& c, const topology_options& o) {
  auto* raw = c.raw();
  constexpr auto ch = amqp_connection::channel;
  amqp_exchange_declare(raw, ch, as_bytes(jobs_exchange), amqp_cstring_bytes("direct"), 0, 1, 0, 0,
                        amqp_empty_table);
  c.check_rpc("exchange.declare jobs");
  amqp_exchange_declare(raw, ch, as_bytes(dead_exchange), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  c.check_rpc("exchange.declare jobs.dlx");

  amqp_table_entry_t dead_args[] = {string_entry("x-queue-type", "quorum"),
                                    int_entry("x-max-length", o.dead_letter_max),
                                    string_entry("x-overflow", "drop-head")};
  declare_or_keep(c, dead_queue, amqp_table_t{3, dead_args},
                  "jobs.dead exists with another bound: kept as it is; delete it and restart "
                  "the API to apply JOBS_DEAD_LETTER_MAX (its messages are copies kept for people)",
                  {{"dead_letter_max", static_cast<std::int64_t>(o.dead_letter_max)}});
  declare_quorum_queue(c, rescue_queue, amqp_table_t{1, dead_args});
  for (auto q : {dead_queue, rescue_queue}) {
    amqp_queue_bind(raw, ch, as_bytes(q), as_bytes(dead_exchange), amqp_cstring_bytes(""),
                    amqp_empty_table);
    c.check_rpc("queue.bind to jobs.dlx");
  }

  for (auto q : known_queues) {
    amqp_table_entry_t args[] = {string_entry("x-queue-type", "quorum"),
                                 string_entry("x-dead-letter-exchange", "jobs.dlx"),
                                 int_entry("x-delivery-limit", o.delivery_limit)};
    declare_or_keep(c, q, amqp_table_t{3, args},
                    "a job queue exists with other arguments: kept as it is (its delivery limit "
                    "stays the one it was declared with); README, Configuration, says how to "
                    "apply JOBS_QUEUE_DELIVERY_LIMIT",
                    {{"queue", std::string(q)},
                     {"delivery_limit", static_cast<std::int64_t>(o.delivery_limit)}});
    amqp_queue_bind(raw, ch, as_bytes(q), as_bytes(jobs_exchange), as_bytes(q), amqp_empty_table);
    c.check_rpc("queue.bind");
  }
}

unsigned purge_queue(amqp_connection& c, std::string_view queue) {
  auto* ok = amqp_queue_purge(c.raw(), amqp_connection::channel, as_bytes(queue));
  c.check_rpc("queue.purge");
  return ok ? ok->message_count : 0;
}

queue_counts inspect_queue(amqp_connection& c, std::string_view queue) {
  auto* ok = amqp_queue_declare(c.raw(), amqp_connection::channel, as_bytes(queue), 1, 0, 0, 0,
                                amqp_empty_table);
  c.check_rpc("queue.declare passive");
  return {ok->message_count, ok->consumer_count};
}

}  // namespace jobs
