#include "workers/email/message.hpp"

#include "common/base64.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <optional>

namespace jobs::email {
namespace {

namespace json = boost::json;

bool is_atext(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_address(std::string_view a) {
  if (a.size() > limits::max_address) return false;
  auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > limits::max_local_part) return false;
  std::string_view local = a.substr(0, at), domain = a.substr(at + 1);
  // dot-atom: atoms of atext separated by single dots.
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  if (!std::all_of(local.begin(), local.end(), [](char c) { return c == '.' || is_atext(c); }))
    return false;
  // Host name: labels of letters, digits and inner hyphens, 1 to 63 each.
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
        }))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(address.substr(at + 1));
  std::transform(d.begin(), d.end(), d.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return d;
}

bool allowed_custom_header(std::string_view name) {
  static constexpr std::array<std::string_view, 9> names{
      "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id",  "In-Reply-To", "References",
      "Precedence",       "Auto-Submitted",        "Keywords", "Comments"};
  if (std::any_of(names.begin(), names.end(), [&](auto n) { return iequals(n, name); }))
    return true;
  if (name.size() < 3 || name.size() > 76 || !iequals(name.substr(0, 2), "X-") ||
      iequals(name, "X-Tags"))
    return false;
  return std::all_of(name.begin() + 2, name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

bool structured_header(std::string_view name) {
  static constexpr std::array<std::string_view, 7> names{
      "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "In-Reply-To", "References",
      "Precedence",       "Auto-Submitted"};
  return std::any_of(names.begin(), names.end(), [&](auto n) { return iequals(n, name); });
}

std::string structured_value_problem(std::string_view value) {
  if (!printable_ascii(value))
    return "must be printable ASCII (a structured field: encoded-words cannot stand for it)";
  std::size_t run = 0;
  for (char c : value) {
    run = c == ' ' ? 0 : run + 1;
    if (run > max_structured_word)
      return fmt::format(
          "has a word of more than {} characters without a space, which cannot be folded into "
          "lines a relay takes",
          max_structured_word);
  }
  return {};
}

std::string encode_words(std::string_view text, std::size_t used) {
  // "=?UTF-8?B?" + base64 + "?=" on a line of 76 after `used` characters:
  // 45 bytes of text (60 of base64) after a fold's space, fewer after a
  // field's name; cut before a continuation byte, never inside.
  static constexpr std::size_t line = 76, wrapper = 12, max_bytes = 45;
  std::string out;
  // No room for a character's word (4 bytes, 8 of base64) after a long
  // field name: the first word goes on the next line.
  bool fold_first = used + wrapper + 8 > line;
  std::size_t first = fold_first ? max_bytes : std::min(max_bytes, (line - used - wrapper) / 4 * 3);
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = std::min(text.size(), i + (i == 0 ? first : max_bytes));
    while (end < text.size() && end > i && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      --end;
    if (i > 0 || fold_first) out += "\r\n ";
    out += "=?UTF-8?B?" + encode_base64(text.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

namespace {
// RFC 5322 2.1.1: lines of at most 998 characters, 78 recommended.
constexpr std::size_t line_limit = 998, line_wanted = 78;

// `text` with CRLF inserted before a space wherever the line would pass
// `line_wanted` (unfolding removes them: the value is unchanged). Each
// continuation line starts with its spaces and holds a word, never only
// spaces. Nothing when a piece cannot fit in `line_limit`.
std::optional<std::string> fold_at_spaces(std::string_view text, std::size_t used) {
  std::string out;
  std::size_t line = used;
  bool line_has_word = false;  // a fold needs something before it on its line
  for (std::size_t i = 0; i < text.size();) {
    // A piece: spaces, then the word after them.
    std::size_t j = i;
    while (j < text.size() && text[j] == ' ') ++j;
    while (j < text.size() && text[j] != ' ') ++j;
    auto piece = text.substr(i, j - i);
    bool has_word = piece.find_first_not_of(' ') != std::string_view::npos;
    if (has_word && line_has_word && line + piece.size() > line_wanted) {
      out += "\r\n";
      line = 0;
    }
    if (line + piece.size() > line_limit) return std::nullopt;
    out += piece;
    line += piece.size();
    line_has_word = line_has_word || has_word;
    i = j;
  }
  return out;
}
}  // namespace

std::string encode_unstructured(std::string_view text, std::size_t used) {
  // Printable ASCII stays readable unless it could be taken for an encoded-word.
  if (printable_ascii(text) && text.find("=?") == std::string_view::npos) {
    if (used + text.size() <= line_wanted) return std::string(text);
    if (auto folded = fold_at_spaces(text, used)) return *folded;
  }
  return encode_words(text, used);
}

std::string encode_structured(std::string_view text, std::size_t used) {
  // Folding white space is a single space to these fields' grammar: the
  // words alone, one space apart, always fold (none is longer than a line).
  std::string words;
  for (std::size_t i = 0; i < text.size();) {
    auto start = text.find_first_not_of(' ', i);
    if (start == std::string_view::npos) break;
    auto end = std::min(text.find(' ', start), text.size());
    if (!words.empty()) words += ' ';
    words += text.substr(start, end - start);
    i = end;
  }
  if (used + words.size() <= line_wanted) return words;
  if (auto folded = fold_at_spaces(words, used)) return *folded;
  return words;  // a word over structured_value_problem()'s limit: not given one
}

std::string format_mailbox(const mailbox& m) {
  if (m.name.empty()) return m.address;
  std::string name;
  if (!printable_ascii(m.name) || m.name.find("=?") != std::string::npos) {
    // A mailbox starts a line after "Reply-To: " at the most, or a fold's
    // space; the address goes on a line of its own when the last word's
    // would pass 76 with it (and the "," a list puts after it).
    constexpr std::size_t longest_field = 10;
    name = encode_words(m.name, longest_field);
    auto fold = name.rfind("\r\n");
    auto last = fold == std::string::npos ? longest_field + name.size() : name.size() - fold - 2;
    if (last + 2 + m.address.size() + 2 > 76) return name + "\r\n <" + m.address + ">";
  } else if (std::all_of(m.name.begin(), m.name.end(),
                         [](char c) { return c == ' ' || is_atext(c); }) &&
             m.name.front() != ' ' && m.name.back() != ' ') {
    name = m.name;
  } else {
    name = "\"";
    for (char c : m.name) {
      if (c == '"' || c == '\\') name += '\\';
      name += c;
    }
    name += '"';
  }
  return name + " <" + m.address + ">";
}

std::string message_id(std::string_view job_id, std::string_view domain) {
  return fmt::format("<{}@{}>", job_id, domain);
}

std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  static constexpr std::array<std::string_view, 7> days{"Sun", "Mon", "Tue", "Wed",
                                                        "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::vector<std::string> top_headers(const message& m, std::string_view message_id,
                                     std::string_view date) {
  auto list = [](const std::vector<mailbox>& boxes) {
    std::string out;
    for (const auto& b : boxes) out += (out.empty() ? "" : ",\r\n ") + format_mailbox(b);
    return out;
  };
  std::vector<std::string> h;
  h.push_back("From: " + format_mailbox(m.from));
  h.push_back("To: " + list(m.to));
  if (!m.cc.empty()) h.push_back("Cc: " + list(m.cc));
  if (m.reply_to) h.push_back("Reply-To: " + format_mailbox(*m.reply_to));
  h.push_back("Subject: " + encode_unstructured(m.subject, 9));
  h.push_back(fmt::format("Date: {}", date));
  h.push_back(fmt::format("Message-ID: {}", message_id));
  // A structured value the API refuses now (a job accepted before it did)
  // goes out as it used to, rather than the job dying.
  for (const auto& [name, value] : m.headers)
    h.push_back(name + ": " +
                (structured_header(name) && structured_value_problem(value).empty()
                     ? encode_structured(value, name.size() + 2)
                     : encode_unstructured(value, name.size() + 2)));
  if (!m.tags.empty()) {
    std::string tags;
    for (const auto& t : m.tags) tags += (tags.empty() ? "" : ", ") + t;
    h.push_back("X-Tags: " + tags);
  }
  return h;
}

std::string content_disposition(std::string_view filename) {
  if (printable_ascii(filename)) {
    std::string out = "attachment; filename=\"";
    for (char c : filename) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  }
  // RFC 2231: percent-encoded UTF-8; split into numbered continuations
  // (`filename*0*=UTF-8''…; filename*1*=…`) on lines of their own when one
  // line would be too long (255 characters of 4 bytes make 3,000).
  std::vector<std::string> pieces{""};
  constexpr std::size_t piece_max = 54;  // " filename*0*=UTF-8''" + 54 + ";": 76
  for (unsigned char c : filename) {
    std::string enc =
        std::isalnum(c) || std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) !=
                               std::string_view::npos
            ? std::string(1, static_cast<char>(c))
            : fmt::format("%{:02X}", c);
    if (pieces.back().size() + enc.size() > piece_max) pieces.emplace_back();
    pieces.back() += enc;
  }
  if (pieces.size() == 1) return "attachment; filename*=UTF-8''" + pieces[0];
  std::string out = "attachment";
  for (std::size_t i = 0; i < pieces.size(); ++i)
    out += fmt::format(";\r\n filename*{}*={}{}", i, i == 0 ? "UTF-8''" : "", pieces[i]);
  return out;
}

std::string crlf_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace jobs::email
