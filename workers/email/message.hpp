#pragma once
// The email message: the `email.send` payload parsed and checked, and the
// pure pieces of turning it into RFC 5322 / MIME (no sockets, no curl).
//
// Addresses are RFC 5322 addr-specs restricted to what relays accept in
// practice: a dot-atom local part (no quoted strings) and an ASCII host name
// (IDNs in punycode), at most 254 characters. A display name is any UTF-8
// text without control characters; it goes out as atoms, a quoted string, or
// RFC 2047 encoded-words ("=?UTF-8?B?...?=") when it is not ASCII.
//
// Header injection: every value that ends up in a header (names, addresses,
// subject, custom headers, file names, content types, tags) is refused when
// it holds CR, LF or NUL, or any other control character, whatever the API
// already checked.
//
// Thread-safety: free functions of their arguments.

#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace jobs::email {

struct limits {
  static constexpr std::size_t max_address = 254;
  static constexpr std::size_t max_local_part = 64;
  static constexpr std::size_t max_name = 200;          ///< display name, characters of UTF-8
  static constexpr std::size_t max_subject = 998;       ///< characters of UTF-8
  static constexpr std::size_t max_recipients = 100;    ///< to + cc + bcc
  static constexpr std::size_t max_header_value = 998;  ///< characters of UTF-8
  static constexpr std::size_t max_headers = 20;
  static constexpr std::size_t max_attachments = 20;
  static constexpr std::size_t max_filename = 255;
  static constexpr std::size_t max_tags = 10;
  static constexpr std::size_t default_attachment_bytes = 10 << 20;  ///< decoded, all together
};

struct mailbox {
  std::string address;  ///< addr-spec, e.g. ada@example.com
  std::string name;     ///< display name (UTF-8), may be empty
};

struct attachment {
  std::string filename;
  std::string content_type;  ///< type/subtype, no parameters
  std::string content;       ///< decoded bytes
};

struct message {
  mailbox from;
  std::vector<mailbox> to, cc, bcc;
  std::optional<mailbox> reply_to;
  std::string subject;
  std::optional<std::string> text, html;
  std::vector<std::pair<std::string, std::string>> headers;  ///< allow-listed custom headers
  std::vector<attachment> attachments;
  std::vector<std::string> tags;

  /// Every envelope recipient: to, cc, then bcc, each mailbox once (the
  /// same local part and the domain in any case), so none gets it twice.
  std::vector<std::string> recipients() const;
};

/// The payload as a message, or the reason it is not acceptable (a
/// permanent error). `max_attachment_bytes` bounds the decoded attachments.
std::variant<message, std::string> parse_message(const boost::json::value& payload,
                                                 std::size_t max_attachment_bytes);

/// RFC 5322 addr-spec as restricted above.
bool valid_address(std::string_view address);
/// The part after '@', lower-cased ("" when there is none).
std::string domain_of(std::string_view address);
/// Custom headers the payload may set (case-insensitive): List-Unsubscribe,
/// List-Unsubscribe-Post, List-Id, In-Reply-To, References, Precedence,
/// Auto-Submitted, Keywords, Comments, and X-* names other than X-Tags.
bool allowed_custom_header(std::string_view name);
/// ASCII case-insensitive equality, as header names compare.
bool iequals(std::string_view a, std::string_view b);
/// Custom headers whose value has a structure (message ids, URLs, tokens):
/// List-Unsubscribe, List-Unsubscribe-Post, List-Id, In-Reply-To, References,
/// Precedence, Auto-Submitted. Encoded-words may not stand for them, so their
/// values must be printable ASCII whose words (runs without a space) fold
/// into lines of 998: at most `max_structured_word` characters each.
bool structured_header(std::string_view name);
inline constexpr std::size_t max_structured_word = 900;
/// Why `value` cannot be the value of a structured header ("" when it can).
std::string structured_value_problem(std::string_view value);

/// `text` as RFC 2047 "B" encoded-words of UTF-8, each at most 75 characters,
/// never splitting a character, separated by CRLF SP (folding). `used`: the
/// characters before the first on its line; every line is then at most 76
/// characters (RFC 2047 section 2).
std::string encode_words(std::string_view text, std::size_t used = 1);
/// An unstructured header value (Subject) for a field whose "Name: " takes
/// `used` characters: printable ASCII as is, folded (CRLF before a space)
/// where the line would pass 78 characters; encoded-words when it is not
/// printable ASCII, could be taken for an encoded-word, or holds a run
/// without spaces too long for a line of 998.
std::string encode_unstructured(std::string_view text, std::size_t used = 0);
/// A structured header's value (structured_value_problem() found nothing):
/// runs of spaces made one, folded before a space where the line would pass
/// 78 characters; never encoded-words.
std::string encode_structured(std::string_view text, std::size_t used = 0);
/// "Name <addr>" with the name as atoms, quoted string or encoded-words; the
/// bare address without a name.
std::string format_mailbox(const mailbox& m);

/// `<job-id@domain>`: the same on every attempt of a job.
std::string message_id(std::string_view job_id, std::string_view domain);
/// RFC 5322 date-time in UTC, e.g. "Sun, 29 Nov 2026 06:32:52 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point t);
/// The top-level header lines ("Name: value") of the message: From, To, Cc,
/// Reply-To, Subject, Date, Message-ID, custom headers, X-Tags. Never Bcc.
std::vector<std::string> top_headers(const message& m, std::string_view message_id,
                                     std::string_view date);
/// Content-Disposition of an attachment: filename="..." for printable ASCII,
/// RFC 2231 filename*=UTF-8''... otherwise.
std::string content_disposition(std::string_view filename);
/// Lone LF and lone CR become CRLF (canonical text for text/* parts).
std::string crlf_lines(std::string_view text);

}  // namespace jobs::email
