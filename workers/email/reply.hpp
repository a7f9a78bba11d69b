#pragma once
// What the relay said, and what it means for the job: a pure reading of the
// SMTP conversation (no sockets), fed line by line by the sender.
//
// Classification of one send:
//   accepted    the final reply after the message data was 2xx (at least one
//               recipient accepted; the others are listed as rejected);
//   temporary   a 4xx reply to MAIL, RCPT (every recipient refused, one at
//               least with 4xx), DATA or the end of data: retryable;
//   permanent   a 5xx reply to those commands: the job is dead, the reply kept;
//   unknown     the relay accepted DATA (354) and the connection broke, or the
//               deadline passed, before its final reply: the message may have
//               been queued; retryable, and the retry carries the same
//               Message-ID so receivers can drop the duplicate;
//   failed      anything before MAIL FROM (connect, TLS, EHLO, AUTH) or a
//               break before DATA was accepted: retryable (a relay that
//               refuses our login is a configuration problem, not the
//               message's).
//
// Thread-safety: a value, one per send.

#include <string>
#include <string_view>
#include <vector>

namespace jobs::email {

struct smtp_reply {
  int code = 0;      ///< 0: none
  std::string text;  ///< the reply's lines without their codes, joined by "\n"
};

struct recipient_reply {
  std::string address;
  smtp_reply reply;
};

enum class send_status { accepted, temporary, permanent, unknown, failed };

struct send_outcome {
  send_status status = send_status::failed;
  smtp_reply reply;                         ///< the reply that decided (final reply when accepted)
  std::string error;                        ///< for failed / unknown: what broke
  std::vector<recipient_reply> recipients;  ///< RCPT replies in order

  std::vector<std::string> accepted() const;  ///< recipients with a 2xx RCPT reply
};

/// Follows one SMTP conversation as the client sees it.
class transcript {
 public:
  /// A command line we sent ("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA").
  void on_command(std::string_view line);
  /// A reply line from the relay ("250-SIZE", "250 OK", "354 go ahead").
  void on_reply_line(std::string_view line);
  /// Decides the outcome once the transfer is over: `transfer_ok` is what
  /// the client library said, `error` its message when it failed.
  send_outcome finish(bool transfer_ok, std::string_view error) const;
  /// The relay answered DATA with 354: from here a break is `unknown`.
  bool data_accepted() const { return stage_ == stage::body || stage_ == stage::after_body; }
  /// Any reply seen at all (false: the connection failed before the greeting).
  bool any_reply() const { return any_reply_; }

 private:
  enum class stage { before_mail, mail, rcpt, data, body, after_body };
  stage stage_ = stage::before_mail;
  std::string pending_rcpt_;
  smtp_reply partial_;  ///< continuation lines of a reply in progress
  smtp_reply last_;     ///< last complete reply
  smtp_reply mail_, data_, final_;
  std::vector<recipient_reply> rcpts_;
  bool any_reply_ = false;
};

}  // namespace jobs::email
