// The ("email", "send") handler: payload -> message -> throttle -> relay ->
// outcome, and the settings that configure it.
#include "common/config.hpp"
#include "common/log.hpp"
#include "workers/email/email.hpp"
#include "workers/email/message.hpp"
#include "workers/email/throttle.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <memory>
#include <set>
#include <thread>

namespace jobs {
namespace {

namespace json = boost::json;
using email::send_status;

json::object reply_json(const email::smtp_reply& r) { return {{"code", r.code}, {"text", r.text}}; }

std::string reply_text(const email::smtp_reply& r) {
  return r.code ? fmt::format("{} {}", r.code, r.text) : std::string("no reply");
}

struct email_sender {
  email_options opts;
  email::relay relay;
  email::domain_throttle throttle;

  explicit email_sender(const email_options& o)
      : opts(o), relay(o.relay), throttle(o.domain_rate) {}

  handler_result operator()(const job_context& ctx) {
    auto parsed = email::parse_message(ctx.payload, opts.max_attachment_bytes);
    if (auto* why = std::get_if<std::string>(&parsed)) return handler_error::permanent(*why);
    const auto& m = std::get<email::message>(parsed);

    const std::string domain =
        opts.message_id_domain.empty() ? email::domain_of(m.from.address) : opts.message_id_domain;
    const auto id = email::message_id(ctx.id, domain);

    if (auto wait = take_slot(m, ctx)) return *wait;

    auto headers = email::top_headers(m, id, email::rfc5322_date(std::chrono::system_clock::now()));
    auto out = relay.send(m, headers, ctx.cancel);
    return outcome(out, id);
  }

  // Books the message's domains, sleeping briefly if need be; a handler
  // error (snooze) when the wait would be long or the job is stopped.
  std::optional<handler_result> take_slot(const email::message& m, const job_context& ctx) {
    std::set<std::string> unique;
    for (const auto& r : m.recipients()) unique.insert(email::domain_of(r));
    auto b = throttle.reserve(std::string(ctx.id), {unique.begin(), unique.end()},
                              email::domain_throttle::clock::now(), opts.max_throttle_sleep);
    auto wake = std::chrono::system_clock::now() + (b.at - email::domain_throttle::clock::now());
    if (!b.now)
      return handler_error{handler_error::kind::snooze, "recipient domain over its rate", wake};
    while (email::domain_throttle::clock::now() < b.at) {
      if (ctx.stop_requested())
        return handler_error{handler_error::kind::snooze, "stopped while throttled", wake};
      std::this_thread::sleep_for(std::min<email::domain_throttle::clock::duration>(
          b.at - email::domain_throttle::clock::now(), std::chrono::milliseconds(20)));
    }
    return std::nullopt;
  }

  static handler_result outcome(const email::send_outcome& out, const std::string& id) {
    switch (out.status) {
      case send_status::accepted: {
        json::object result{{"message_id", id}, {"reply", reply_json(out.reply)}};
        json::array accepted, rejected;
        for (const auto& r : out.recipients) {
          if (r.reply.code >= 200 && r.reply.code < 300)
            accepted.push_back(json::string(r.address));
          else
            rejected.push_back(
                {{"address", r.address}, {"code", r.reply.code}, {"text", r.reply.text}});
        }
        result["accepted"] = std::move(accepted);
        if (!rejected.empty()) result["rejected"] = std::move(rejected);
        return json::value(std::move(result));
      }
      case send_status::permanent:
        return handler_error::permanent(fmt::format("smtp {}", reply_text(out.reply)));
      case send_status::temporary:
        return handler_error::retryable(fmt::format("smtp {}", reply_text(out.reply)));
      case send_status::unknown:
        return handler_error::retryable(
            fmt::format("unknown: {}; the retry reuses Message-ID {}", out.error, id));
      case send_status::failed: break;
    }
    return handler_error::retryable(
        out.reply.code ? fmt::format("{} (last reply: {})", out.error, reply_text(out.reply))
                       : out.error);
  }
};

}  // namespace

email_options email_options_from(const config& cfg) {
  email_options o;
  o.relay.host = cfg.smtp_host;
  if (!email::parse_tls_mode(cfg.smtp_tls, o.relay.tls))
    throw config_error("JOBS_SMTP_TLS must be starttls, starttls-optional, off or implicit");
  o.relay.port = cfg.smtp_port                              ? cfg.smtp_port
                 : o.relay.tls == email::tls_mode::implicit ? 465
                                                            : 587;
  o.relay.verify = cfg.smtp_verify;
  o.relay.ca_file = cfg.smtp_ca_file;
  o.relay.user = cfg.smtp_user;
  o.relay.password = cfg.smtp_password;
  if (!o.relay.user.empty() && o.relay.tls != email::tls_mode::starttls &&
      o.relay.tls != email::tls_mode::implicit)
    throw config_error(
        "JOBS_SMTP_USER needs JOBS_SMTP_TLS=starttls or implicit: "
        "credentials never go over an unencrypted connection");
  if (!o.relay.user.empty() && o.relay.password.empty())
    throw config_error(
        "JOBS_SMTP_USER is set but the password is empty: set JOBS_SMTP_PASSWORD or "
        "JOBS_SMTP_PASSWORD_FILE (a login with an empty password is refused by every relay)");
  o.relay.connect_timeout = cfg.smtp_connect_timeout;
  o.relay.timeout = cfg.smtp_timeout;
  o.relay.max_connections = cfg.smtp_max_connections;
  o.domain_rate = cfg.email_domain_rate;
  o.max_attachment_bytes = cfg.email_max_attachment_bytes;
  o.message_id_domain = cfg.email_message_id_domain;
  if (!o.message_id_domain.empty() && !email::valid_address("x@" + o.message_id_domain))
    throw config_error("JOBS_EMAIL_MESSAGE_ID_DOMAIN must be a host name");
  return o;
}

void register_email_handlers(handler_registry& r, const email_options& o) {
  if (o.relay.host.empty())
    log_warn("no SMTP relay configured: email jobs fail (retryable) until JOBS_SMTP_HOST is set");
  auto sender = std::make_shared<email_sender>(o);
  r.add("email", "send", [sender](const job_context& ctx) { return (*sender)(ctx); });
}

}  // namespace jobs
