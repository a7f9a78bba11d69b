#include "workers/email/reply.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace jobs::email {
namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::toupper(static_cast<unsigned char>(a)) ==
                  std::toupper(static_cast<unsigned char>(b));
         });
}

std::string_view trim_crlf(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

send_status by_code(int code) {
  if (code >= 200 && code < 400) return send_status::accepted;
  if (code >= 400 && code < 500) return send_status::temporary;
  if (code >= 500 && code < 600) return send_status::permanent;
  return send_status::failed;
}

}  // namespace

std::vector<std::string> send_outcome::accepted() const {
  std::vector<std::string> out;
  for (const auto& r : recipients)
    if (r.reply.code >= 200 && r.reply.code < 300) out.push_back(r.address);
  return out;
}

void transcript::on_command(std::string_view line) {
  line = trim_crlf(line);
  if (starts_with_nocase(line, "MAIL FROM:")) {
    stage_ = stage::mail;
    rcpts_.clear();
    mail_ = data_ = final_ = {};
  } else if (starts_with_nocase(line, "RCPT TO:")) {
    stage_ = stage::rcpt;
    auto addr = line.substr(8);
    if (!addr.empty() && addr.front() == '<') addr.remove_prefix(1);
    addr = addr.substr(0, addr.find('>'));
    pending_rcpt_ = std::string(addr);
  } else if (starts_with_nocase(line, "DATA")) {
    stage_ = stage::data;
  } else if (stage_ != stage::before_mail) {
    // Any other command (QUIT, RSET, ...) ends the message's conversation:
    // its reply (221 Bye) is no recipient's, MAIL's or DATA's. After the
    // data, it is a new command on a reused connection.
    stage_ = stage::before_mail;
  }
}

void transcript::on_reply_line(std::string_view line) {
  line = trim_crlf(line);
  if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3, [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      }))
    return;
  any_reply_ = true;
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (!partial_.text.empty()) partial_.text += '\n';
  partial_.text += text;
  partial_.code = code;
  if (line.size() > 3 && line[3] == '-') return;  // more lines follow
  last_ = std::move(partial_);
  partial_ = {};
  switch (stage_) {
    case stage::mail: mail_ = last_; break;
    case stage::rcpt: rcpts_.push_back({pending_rcpt_, last_}); break;
    case stage::data:
      data_ = last_;
      if (code == 354) stage_ = stage::body;
      break;
    case stage::body:
      // The reply after the end of data.
      final_ = last_;
      stage_ = stage::after_body;
      break;
    default: break;
  }
}

send_outcome transcript::finish(bool transfer_ok, std::string_view error) const {
  send_outcome out;
  out.recipients = rcpts_;
  if (final_.code != 0) {
    out.reply = final_;
    out.status = by_code(final_.code);
    if (!transfer_ok && out.status == send_status::accepted)
      out.status = send_status::unknown;  // should not happen: an error after a 2xx
    return out;
  }
  if (stage_ == stage::body) {
    out.status = send_status::unknown;
    out.error =
        fmt::format("connection lost after the relay accepted DATA, before its final reply: {}",
                    error.empty() ? "no reply" : error);
    return out;
  }
  if (transfer_ok) {
    // The library says it went through, yet no final reply was seen.
    out.status = send_status::unknown;
    out.error = "no final reply seen";
    return out;
  }
  // Refused before the data: the deciding reply is the last one to MAIL,
  // RCPT or DATA.
  const smtp_reply* deciding = nullptr;
  if (data_.code >= 400) deciding = &data_;
  if (mail_.code >= 400) deciding = &mail_;
  if (!deciding && !rcpts_.empty() && out.accepted().empty()) {
    // Every recipient refused: permanent only if every refusal was.
    bool all_permanent = std::all_of(rcpts_.begin(), rcpts_.end(),
                                     [](const auto& r) { return r.reply.code >= 500; });
    auto it = std::find_if(rcpts_.begin(), rcpts_.end(), [&](const auto& r) {
      return all_permanent || (r.reply.code >= 400 && r.reply.code < 500);
    });
    if (it != rcpts_.end() && it->reply.code >= 400) deciding = &it->reply;
  }
  if (deciding) {
    out.reply = *deciding;
    out.status = by_code(deciding->code);
    return out;
  }
  out.status = send_status::failed;
  out.reply = last_;
  out.error = std::string(error.empty() ? "transfer failed" : error);
  return out;
}

}  // namespace jobs::email
