#include "workers/email/message.hpp"

#include "common/base64.hpp"
#include "common/text.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

// The email.send payload into a message. The API checked it against its
// schema already; everything is checked again here, since the worker must
// never put unchecked text into a header.
namespace jobs::email {
namespace {

namespace json = boost::json;

// Characters (code points) of valid UTF-8, as JSON Schema's maxLength counts.
std::size_t characters(std::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

// Text of a member that must be a string, with the checks every header value
// gets; the error names the member. `max_chars` counts characters, as the
// schema does: the encoding folds long values into lines a relay takes.
std::optional<std::string> header_text(const json::value& v, std::string_view what,
                                       std::size_t max_chars, std::string& error) {
  if (!v.is_string()) {
    error = fmt::format("{} must be a string", what);
    return std::nullopt;
  }
  std::string_view s = v.get_string();
  if (!is_utf8(s)) {
    error = fmt::format("{} is not valid UTF-8", what);
  } else if (!is_field_value(s)) {
    error = fmt::format("{} contains CR, LF, NUL or another control character", what);
  } else if (characters(s) > max_chars) {
    error = fmt::format("{} is longer than {} characters", what, max_chars);
  } else {
    return std::string(s);
  }
  return std::nullopt;
}

// "addr" or {"email": "addr", "name"?: "Display Name"}.
std::optional<mailbox> parse_mailbox(const json::value& v, const std::string& what,
                                     std::string& error) {
  mailbox m;
  const json::value* email = &v;
  if (const auto* o = v.if_object()) {
    email = o->if_contains("email");
    if (!email) {
      error = what + ".email is required";
      return std::nullopt;
    }
    if (const auto* name = o->if_contains("name")) {
      auto n = header_text(*name, what + ".name", limits::max_name, error);
      if (!n) return std::nullopt;
      m.name = std::move(*n);
    }
  }
  auto addr = header_text(*email, what, limits::max_address, error);
  if (!addr) return std::nullopt;
  if (!valid_address(*addr)) {
    error = fmt::format("{} is not a valid address: {:?}", what, *addr);
    return std::nullopt;
  }
  m.address = std::move(*addr);
  return m;
}

bool parse_list(const json::object& p, std::string_view key, std::vector<mailbox>& out,
                std::string& error) {
  const json::value* v = p.if_contains(key);
  if (!v) return true;
  if (!v->is_array()) {
    error = fmt::format("{} must be an array", key);
    return false;
  }
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    auto m = parse_mailbox(v->get_array()[i], fmt::format("{}[{}]", key, i), error);
    if (!m) return false;
    out.push_back(std::move(*m));
  }
  return true;
}

bool parse_attachments(const json::object& p, std::size_t max_bytes, message& m,
                       std::string& error) {
  const json::value* v = p.if_contains("attachments");
  if (!v) return true;
  if (!v->is_array() || v->get_array().size() > limits::max_attachments) {
    error = fmt::format("attachments must be an array of at most {}", limits::max_attachments);
    return false;
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const auto* a = v->get_array()[i].if_object();
    const auto what = fmt::format("attachments[{}]", i);
    if (!a || !a->contains("filename") || !a->contains("content")) {
      error = what + " needs filename and content";
      return false;
    }
    attachment out;
    auto name = header_text(a->at("filename"), what + ".filename", limits::max_filename, error);
    if (!name) return false;
    out.filename = std::move(*name);
    out.content_type = "application/octet-stream";
    if (const auto* t = a->if_contains("content_type")) {
      auto type = header_text(*t, what + ".content_type", 255, error);
      if (!type) return false;
      auto slash = type->find('/');
      auto token = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) ||
                 std::string_view("!#$&^_.+-").find(c) != std::string_view::npos;
        });
      };
      if (slash == std::string::npos || !token(std::string_view(*type).substr(0, slash)) ||
          !token(std::string_view(*type).substr(slash + 1))) {
        error = what + ".content_type must be type/subtype";
        return false;
      }
      out.content_type = std::move(*type);
    }
    if (!a->at("content").is_string()) {
      error = what + ".content must be a base64 string";
      return false;
    }
    auto bytes = decode_base64(a->at("content").get_string(), base64_padding::required);
    if (!bytes) {
      error = what + ".content is not valid base64";
      return false;
    }
    total += bytes->size();
    if (total > max_bytes) {
      error = fmt::format("attachments are larger than {} bytes in all", max_bytes);
      return false;
    }
    out.content = std::move(*bytes);
    m.attachments.push_back(std::move(out));
  }
  return true;
}

bool parse_headers_and_tags(const json::object& p, message& m, std::string& error) {
  if (const auto* h = p.if_contains("headers")) {
    if (!h->is_object() || h->get_object().size() > limits::max_headers) {
      error = fmt::format("headers must be an object of at most {} members", limits::max_headers);
      return false;
    }
    for (const auto& [name, value] : h->get_object()) {
      if (!allowed_custom_header(name)) {
        error = fmt::format("header {:?} may not be set", std::string_view(name));
        return false;
      }
      // Names are case-insensitive: "In-Reply-To" and "in-reply-to" would
      // be one field twice, which RFC 5322 allows once.
      std::string_view this_name = name;  // clang 14 captures no structured binding
      if (std::any_of(m.headers.begin(), m.headers.end(),
                      [&](const auto& kv) { return iequals(kv.first, this_name); })) {
        error = fmt::format("header {:?} is given twice (names are case-insensitive)",
                            std::string_view(name));
        return false;
      }
      auto text = header_text(value, fmt::format("headers.{}", std::string_view(name)),
                              limits::max_header_value, error);
      if (!text) return false;
      m.headers.emplace_back(std::string(name), std::move(*text));
    }
  }
  if (const auto* t = p.if_contains("tags")) {
    if (!t->is_array() || t->get_array().size() > limits::max_tags) {
      error = fmt::format("tags must be an array of at most {} strings", limits::max_tags);
      return false;
    }
    for (const auto& tag : t->get_array()) {
      std::string_view s = tag.is_string() ? std::string_view(tag.get_string()) : "";
      bool ok = !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      });
      if (!ok) {
        error = "a tag must be 1 to 64 of A-Z a-z 0-9 - _ .";
        return false;
      }
      m.tags.emplace_back(s);
    }
  }
  return true;
}

}  // namespace

namespace {
// One mailbox: the local part as written (RFC 5321 2.4: it may be
// case-sensitive), the domain in any case.
bool same_mailbox(std::string_view a, std::string_view b) {
  auto at_a = a.rfind('@'), at_b = b.rfind('@');
  return at_a == at_b && a.substr(0, at_a) == b.substr(0, at_b) &&
         iequals(a.substr(at_a), b.substr(at_b));
}
}  // namespace

std::vector<std::string> message::recipients() const {
  std::vector<std::string> out;
  for (const auto* list : {&to, &cc, &bcc})
    for (const auto& r : *list)
      if (std::none_of(out.begin(), out.end(),
                       [&](const std::string& seen) { return same_mailbox(seen, r.address); }))
        out.push_back(r.address);
  return out;
}

std::variant<message, std::string> parse_message(const json::value& payload,
                                                 std::size_t max_attachment_bytes) {
  std::string error;
  const auto* p = payload.if_object();
  if (!p) return std::string("the payload must be an object");
  message m;
  if (!p->contains("from")) return std::string("from is required");
  auto from = parse_mailbox(p->at("from"), "from", error);
  if (!from) return error;
  m.from = std::move(*from);
  if (!parse_list(*p, "to", m.to, error) || !parse_list(*p, "cc", m.cc, error) ||
      !parse_list(*p, "bcc", m.bcc, error))
    return error;
  const auto n = m.to.size() + m.cc.size() + m.bcc.size();
  if (m.to.empty()) return std::string("to needs at least one address");
  if (n > limits::max_recipients)
    return fmt::format("more than {} recipients", limits::max_recipients);
  if (const auto* r = p->if_contains("reply_to")) {
    auto rt = parse_mailbox(*r, "reply_to", error);
    if (!rt) return error;
    m.reply_to = std::move(*rt);
  }
  if (!p->contains("subject")) return std::string("subject is required");
  auto subject = header_text(p->at("subject"), "subject", limits::max_subject, error);
  if (!subject) return error;
  m.subject = std::move(*subject);
  for (auto [key, field] : {std::pair{"text", &m.text}, std::pair{"html", &m.html}}) {
    if (const auto* v = p->if_contains(key)) {
      if (!v->is_string() || !is_utf8(v->get_string()))
        return fmt::format("{} must be a UTF-8 string", key);
      *field = crlf_lines(v->get_string());
    }
  }
  if (!m.text && !m.html) return std::string("text or html is required");
  if (!parse_headers_and_tags(*p, m, error)) return error;
  if (!parse_attachments(*p, max_attachment_bytes, m, error)) return error;
  return m;
}

}  // namespace jobs::email
