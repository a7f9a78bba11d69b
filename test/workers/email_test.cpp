// ctest-labels: email
// Unit tests of the email worker's pure parts: addresses, header encoding,
// payload checks (header injection included), the Message-ID, the reading of
// relay replies, the per-domain throttle, and the email.send schema.
#include "workers/email/email.hpp"
#include "common/base64.hpp"
#include "common/config.hpp"
#include "common/schema.hpp"
#include "common/text.hpp"
#include "workers/email/message.hpp"
#include "workers/email/reply.hpp"
#include "workers/email/throttle.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace json = boost::json;
using namespace jobs::email;
using jobs::is_field_value;
using jobs::is_utf8;

namespace {

message parsed(const std::string& payload, std::size_t max_bytes = 1 << 20) {
  auto r = parse_message(json::parse(payload), max_bytes);
  if (auto* e = std::get_if<std::string>(&r)) FAIL("unexpected error: ", *e);
  return std::get<message>(r);
}

std::string error_of(const std::string& payload, std::size_t max_bytes = 1 << 20) {
  auto r = parse_message(json::parse(payload), max_bytes);
  auto* e = std::get_if<std::string>(&r);
  return e ? *e : std::string();
}

// Decodes a header of "=?UTF-8?B?...?=" words joined by CRLF SP.
std::string decode_words(const std::string& header) {
  std::string out;
  std::size_t pos = 0;
  while ((pos = header.find("=?UTF-8?B?", pos)) != std::string::npos) {
    auto end = header.find("?=", pos + 10);
    REQUIRE(end != std::string::npos);
    CHECK(end + 2 - pos <= 75);
    auto bytes = jobs::decode_base64(header.substr(pos + 10, end - pos - 10),
                                     jobs::base64_padding::required);
    REQUIRE(bytes);
    CHECK(is_utf8(*bytes));  // no character split between words
    out += *bytes;
    pos = end + 2;
  }
  return out;
}

send_outcome converse(const std::vector<std::pair<char, std::string>>& lines, bool ok,
                      const std::string& error = {}) {
  transcript t;
  for (const auto& [who, line] : lines) who == '>' ? t.on_command(line) : t.on_reply_line(line);
  return t.finish(ok, error);
}

const std::string minimal =
    R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi","text":"x"})";

}  // namespace

TEST_CASE("addresses: RFC 5322 dot-atom addr-specs with a host name") {
  for (const char* good :
       {"a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie",
        "x!#$%&'*+/=?^_`{|}~-y@e.io", "u@localhost", "1@xn--bcher-kva.example"})
    CHECK_MESSAGE(valid_address(good), good);
  for (const char* bad :
       {"", "a", "@example.com", "a@", "a..b@example.com", ".a@example.com", "a.@example.com",
        "a b@example.com", "\"quoted\"@example.com", "a@-example.com", "a@example-.com",
        "a@exa_mple.com", "a@example..com", "a@[127.0.0.1]", "a\r\nBcc: x@y.z@example.com",
        "a@example.com\r\nBcc: evil@example.net", "zoë@example.com", "a@bücher.example"})
    CHECK_MESSAGE(!valid_address(bad), bad);
  CHECK(!valid_address(std::string(65, 'a') + "@example.com"));
  CHECK(!valid_address("a@" + std::string(64, 'b') + ".com"));
  CHECK(domain_of("Ada@Example.ORG") == "example.org");
}

TEST_CASE("header values with CR, LF, NUL or other controls are refused") {
  CHECK(is_field_value("Hello\tworld"));
  CHECK(is_field_value("Grüße"));
  for (std::string bad :
       std::vector<std::string>{"a\rb", "a\nb", std::string("a\0b", 3), "a\x1b[0m", "a\x7f"})
    CHECK(!is_field_value(bad));
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: x@evil.example","text":"x"})")
          .find("subject contains CR, LF") != std::string::npos);
  CHECK(
      error_of(
          R"({"from":{"email":"a@example.com","name":"A\nBcc: x@evil.example"},"to":["b@example.org"],"subject":"s","text":"x"})")
          .find("from.name") != std::string::npos);
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","headers":{"X-Campaign":"a\u0000b"}})")
          .find("headers.X-Campaign") != std::string::npos);
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","attachments":[{"filename":"a\r\n.txt","content":""}]})")
          .find("filename") != std::string::npos);
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","attachments":[{"filename":"a","content_type":"text/plain\r\nX-Evil: 1","content":""}]})")
          .find("content_type") != std::string::npos);
  CHECK(error_of(R"({"from":"a@example.com","to":["b@example.org\r\n"],"subject":"s","text":"x"})")
            .find("to[0]") != std::string::npos);
}

TEST_CASE("custom headers come from an allow-list") {
  for (const char* ok : {"List-Unsubscribe", "list-id", "In-Reply-To", "X-Campaign-Id", "x-a"})
    CHECK_MESSAGE(allowed_custom_header(ok), ok);
  for (const char* no : {"Bcc", "From", "To", "Subject", "Message-ID", "Content-Type", "Received",
                         "DKIM-Signature", "X-", "X-Tags", "X-A B", "X-A:B", "Return-Path"})
    CHECK_MESSAGE(!allowed_custom_header(no), no);
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","headers":{"Bcc":"x@y.z"}})") ==
      "header \"Bcc\" may not be set");
}

TEST_CASE("display names and subjects: atoms, quoted strings, RFC 2047 encoded-words") {
  CHECK(format_mailbox({"a@example.com", ""}) == "a@example.com");
  CHECK(format_mailbox({"a@example.com", "Ada Lovelace"}) == "Ada Lovelace <a@example.com>");
  CHECK(format_mailbox({"a@example.com", "Lovelace, Ada \"AL\""}) ==
        R"("Lovelace, Ada \"AL\"" <a@example.com>)");
  auto zoe = format_mailbox({"z@example.com", "Zoë Ünver"});
  CHECK(zoe == "=?UTF-8?B?Wm/DqyDDnG52ZXI=?= <z@example.com>");
  CHECK(encode_unstructured("Plain subject") == "Plain subject");
  CHECK(encode_unstructured("looks =?like?= a word") != "looks =?like?= a word");
  // Long non-ASCII text: words of at most 75 characters, folded, no split characters.
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "Grüße, 世界! ";
  auto encoded = encode_unstructured(long_text);
  CHECK(encoded.find("\r\n ") != std::string::npos);
  CHECK(decode_words(encoded) == long_text);
}

namespace {
// The longest line of a header block, CRLF-separated.
std::size_t longest_line(const std::string& field) {
  std::size_t longest = 0;
  for (std::size_t at = 0;;) {
    auto end = field.find("\r\n", at);
    longest = std::max(longest, (end == std::string::npos ? field.size() : end) - at);
    if (end == std::string::npos) return longest;
    at = end + 2;
  }
}
}  // namespace

TEST_CASE("encoded-words keep their lines to 76 characters, the field's name included") {
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "Grüße, 世界! ";
  // Lines holding encoded-words are at most 76 characters, the field's
  // name included (RFC 2047 section 2): "Subject: " takes 9 of the first.
  for (const auto& text : {long_text, std::string(200, 'x') + "\xc3\xa9"}) {
    auto subject = "Subject: " + encode_unstructured(text, 9);
    CHECK(longest_line(subject) <= 76);
    CHECK(decode_words(subject) == text);
  }
  // A display name: its words, then the address on a line of its own when
  // the last word's line would pass 76 with it.
  auto named = [](std::string name, std::string address) {
    return format_mailbox({std::move(address), std::move(name)});
  };
  for (auto box : {named(long_text.substr(0, 60), "someone@example.com"),
                   named("Zoë", std::string(64, 'l') + "@" + std::string(60, 'd') + ".example"),
                   named(long_text.substr(0, 43), "ada@example.org")}) {
    CAPTURE(box);
    auto field = "Reply-To: " + box;
    for (std::size_t at = 0, next; at < field.size(); at = next + 2) {
      next = std::min(field.find("\r\n", at), field.size());
      auto line = field.substr(at, next - at);
      if (line.find("=?UTF-8?B?") != std::string::npos) CHECK(line.size() <= 76);
    }
    CHECK(box.ends_with(">"));
  }
  CHECK(named("Zoë", std::string(70, 'l') + "@example.com").find("?=\r\n <") != std::string::npos);
  // After a field name too long to leave room for a word: the first goes
  // on the next line.
  for (std::size_t name_length : {50, 60, 70, 76}) {
    auto field = "X-" + std::string(name_length - 2, 'n') + ": ";
    auto value = field + encode_unstructured("héllo wörld", field.size());
    CAPTURE(value);
    for (std::size_t at = 0, next; at < value.size(); at = next + 2) {
      next = std::min(value.find("\r\n", at), value.size());
      auto line = value.substr(at, next - at);
      CHECK(line.size() <= (line.find("=?UTF-8?B?") != std::string::npos ? 76 : 78));
    }
    CHECK(decode_words(value) == "héllo wörld");
  }
  // In a list a mailbox is followed by ",": its line counts it, whatever
  // the lengths of the name and the address.
  for (std::size_t name_length = 30; name_length < 50; ++name_length)
    for (std::size_t local = 20; local < 50; ++local) {
      message m;
      m.from = {"a@example.com", ""};
      m.to = {{std::string(local, 'l') + "@example.org", std::string(name_length, 'a') + "é"},
              {"b@example.org", ""}};
      auto headers = top_headers(m, "<id@example.com>", "Sun, 29 Nov 2026 06:33:20 +0000");
      const auto& to = headers[1];
      REQUIRE(to.starts_with("To: "));
      for (std::size_t at = 0, next; at < to.size(); at = next + 2) {
        next = std::min(to.find("\r\n", at), to.size());
        auto line = to.substr(at, next - at);
        if (line.find("=?UTF-8?B?") != std::string::npos) CHECK_MESSAGE(line.size() <= 76, line);
      }
    }
}

TEST_CASE("long subjects and header values are folded into lines a relay takes") {
  // 998 characters of words: folded before spaces, each line at most 78,
  // and unfolding (removing the CRLFs) gives the text back.
  std::string words;
  while (words.size() < 998) words += "word" + std::to_string(words.size()) + " ";
  words.resize(998);
  auto subject = "Subject: " + encode_unstructured(words, 9);
  CHECK(longest_line(subject) <= 78);
  auto unfolded = subject;
  for (auto at = unfolded.find("\r\n"); at != std::string::npos; at = unfolded.find("\r\n"))
    unfolded.erase(at, 2);
  CHECK(unfolded == "Subject: " + words);
  // No line of spaces alone: runs of spaces go with the word after them.
  auto spaced = encode_unstructured(std::string(70, 'a') + "      " + std::string(20, 'b'), 9);
  CHECK(spaced == std::string(70, 'a') + "\r\n      " + std::string(20, 'b'));
  // After a long name (76 characters and ": "), continuation lines still
  // keep to 78.
  auto after_long_name = std::string(76, 'N') + ": " + encode_unstructured(words, 78);
  auto first_break = after_long_name.find("\r\n");
  CHECK(longest_line(after_long_name.substr(first_break + 2)) <= 78);
  // A short value is left as it is.
  CHECK(encode_unstructured("Plain subject", 9) == "Plain subject");
  // 998 characters without a space cannot fold: encoded-words, which can.
  auto run = "X-Long: " + encode_unstructured(std::string(998, 'v'), 8);
  CHECK(longest_line(run) <= 998);
  CHECK(decode_words(run.substr(8)) == std::string(998, 'v'));
  // What the schema counts (characters) is what the worker counts: 600 é
  // (1,200 bytes) pass, 999 characters do not.
  std::string e600;
  for (int i = 0; i < 600; ++i) e600 += "\u00e9";
  auto m = parsed(R"({"from":"a@example.com","to":["b@example.org"],"subject":")" + e600 +
                  R"(","text":"x","headers":{"X-Note":")" + e600 + R"("}})");
  CHECK(m.subject.size() == 1200);
  CHECK(error_of(R"({"from":"a@example.com","to":["b@example.org"],"subject":")" +
                 std::string(999, 's') + R"(","text":"x"})") ==
        "subject is longer than 998 characters");
  // One field once, whatever the case of its name.
  CHECK(error_of(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x",
    "headers":{"In-Reply-To":"<a@b>","in-reply-to":"<c@d>"}})") ==
        R"(header "in-reply-to" is given twice (names are case-insensitive))");
  // Header names in any case, as the schema takes them.
  CHECK(parsed(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x",
    "headers":{"x-foo":"a","list-id":"<a.b>"}})")
            .headers.size() == 2);
}

TEST_CASE("structured headers fold at their spaces and are never encoded-words") {
  // 30 message ids in References: lines of at most 78, no encoded-word, the
  // ids whole; the runs of spaces between them count as one.
  std::string ids;
  for (int i = 0; i < 30; ++i)
    ids += fmt::format("{}<{}.{}@mail.example.org>", i ? "   " : "", i, i * 7919);
  auto m = parsed(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x",
    "headers":{"References":")" +
                  ids + R"(","List-Unsubscribe":"<https://example.com/u/)" + std::string(860, 'k') +
                  R"(>, <mailto:u@example.com>"}})");
  auto h = top_headers(m, "<id@example.com>", "Mon, 07 Dec 2026 06:00:00 +0000");
  auto field = [&](std::string_view name) {
    auto it = std::find_if(h.begin(), h.end(), [&](const auto& f) { return f.starts_with(name); });
    REQUIRE(it != h.end());
    return *it;
  };
  auto refs = field("References: ");
  CHECK(longest_line(refs) <= 78);
  CHECK(refs.find("=?") == std::string::npos);
  auto unfolded = refs;
  for (auto at = unfolded.find("\r\n"); at != std::string::npos; at = unfolded.find("\r\n"))
    unfolded.erase(at, 2);
  std::string single = ids;
  for (auto at = single.find("  "); at != std::string::npos; at = single.find("  "))
    single.erase(at, 1);
  CHECK(unfolded == "References: " + single);
  // A URL of 900 characters: a line of its own, under 998.
  auto unsubscribe = field("List-Unsubscribe: ");
  CHECK(unsubscribe.find("=?") == std::string::npos);
  CHECK(longest_line(unsubscribe) <= 998);
  CHECK(unsubscribe.find("\r\n <mailto:u@example.com>") != std::string::npos);
  // What the schema refuses now, in a job accepted before it did, goes out
  // as it used to (encoded-words), rather than the job dying.
  auto old = parsed(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x",
    "headers":{"list-id":"Liste d'\u00e9t\u00e9 <summer.example.org>"}})");
  CHECK(structured_value_problem(old.headers[0].second) ==
        "must be printable ASCII (a structured field: encoded-words cannot stand for it)");
  auto sent = top_headers(old, "<id@example.com>", "Mon, 07 Dec 2026 06:00:00 +0000");
  CHECK(std::any_of(sent.begin(), sent.end(),
                    [](const auto& f) { return f.starts_with("list-id: =?UTF-8?B?"); }));
  CHECK(structured_value_problem("<" + std::string(900, 'c') + ">") ==
        "has a word of more than 900 characters without a space, which cannot be folded into "
        "lines a relay takes");
  // An unstructured one may still be encoded.
  CHECK(parsed(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x",
    "headers":{"Comments":"\u00e9t\u00e9"}})")
            .headers.size() == 1);
}

TEST_CASE("Message-ID is derived from the job id; the date is RFC 5322") {
  CHECK(message_id("0193-abc", "example.com") == "<0193-abc@example.com>");
  CHECK(message_id("0193-abc", "example.com") == message_id("0193-abc", "example.com"));
  auto t = std::chrono::system_clock::from_time_t(1795934000);  // 2026-11-29 ...
  CHECK(rfc5322_date(t) == "Sun, 29 Nov 2026 06:33:20 +0000");
}

TEST_CASE("payload: recipients, bodies, attachments, tags; Bcc never in the headers") {
  auto m = parsed(R"({"from":{"email":"news@example.com","name":"News"},
    "to":["a@example.org",{"email":"b@example.net","name":"Bé"}],"cc":["c@example.org"],
    "bcc":["hidden@example.com"],"reply_to":"help@example.com","subject":"Hello",
    "text":"line 1\nline 2","html":"<p>x</p>","headers":{"List-Unsubscribe":"<mailto:u@example.com>"},
    "attachments":[{"filename":"a.txt","content_type":"text/plain","content":"aGVsbG8="}],
    "tags":["welcome","t-1"]})");
  CHECK(m.recipients() == std::vector<std::string>{"a@example.org", "b@example.net",
                                                   "c@example.org", "hidden@example.com"});
  // An address in two lists, or with its domain in another case, is one
  // envelope recipient; a local part in another case may be another mailbox.
  auto twice = parsed(R"({"from":"a@example.com","to":["dup@example.org","dup@Example.ORG"],
    "cc":["dup@example.org"],"bcc":["Dup@example.org","x@example.org"],"subject":"s","text":"t"})");
  CHECK(twice.recipients() ==
        std::vector<std::string>{"dup@example.org", "Dup@example.org", "x@example.org"});
  CHECK(*m.text == "line 1\r\nline 2");
  REQUIRE(m.attachments.size() == 1);
  CHECK(m.attachments[0].content == "hello");
  auto headers = top_headers(m, "<id@example.com>", "Sun, 29 Nov 2026 06:33:20 +0000");
  std::string all;
  for (const auto& h : headers) all += h + "\n";
  CHECK(all.find("From: News <news@example.com>\n") != std::string::npos);
  CHECK(all.find("To: a@example.org,\r\n =?UTF-8?B?QsOp?= <b@example.net>\n") != std::string::npos);
  CHECK(all.find("Cc: c@example.org\n") != std::string::npos);
  CHECK(all.find("Reply-To: help@example.com\n") != std::string::npos);
  CHECK(all.find("Message-ID: <id@example.com>\n") != std::string::npos);
  CHECK(all.find("List-Unsubscribe: <mailto:u@example.com>\n") != std::string::npos);
  CHECK(all.find("X-Tags: welcome, t-1\n") != std::string::npos);
  CHECK(all.find("hidden") == std::string::npos);
  CHECK(all.find("Bcc") == std::string::npos);
}

TEST_CASE("payload errors are reasons, never crashes") {
  CHECK(error_of("[]") == "the payload must be an object");
  CHECK(error_of(R"({"to":["b@example.org"],"subject":"s","text":"x"})") == "from is required");
  CHECK(error_of(R"({"from":"a@example.com","to":[],"subject":"s","text":"x"})") ==
        "to needs at least one address");
  CHECK(error_of(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s"})") ==
        "text or html is required");
  CHECK(error_of(R"({"from":"not an address","to":["b@example.org"],"subject":"s","text":"x"})")
            .find("from is not a valid address") == 0);
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","attachments":[{"filename":"a","content":"not base64!"}]})") ==
      "attachments[0].content is not valid base64");
  // 5 bytes decoded, over a limit of 4.
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","attachments":[{"filename":"a","content":"aGVsbG8="}]})",
          4) == "attachments are larger than 4 bytes in all");
  CHECK(
      error_of(
          R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","tags":["a b"]})")
          .find("tag") != std::string::npos);
  CHECK(error_of(
            R"({"from":"a@example.com","to":["b@example.org"],"subject":"\u00ff","text":"\u00ff"})")
            .empty());
  std::string many = R"({"from":"a@example.com","to":[)";
  for (int i = 0; i < 101; ++i) many += (i ? "," : "") + std::string("\"x@example.org\"");
  CHECK(error_of(many + R"(],"subject":"s","text":"x"})") == "more than 100 recipients");
  CHECK(error_of(minimal).empty());
}

TEST_CASE("UTF-8 and line ends") {
  CHECK(is_utf8("plain €"));
  CHECK(!is_utf8("\xc3"));
  CHECK(!is_utf8("\xc0\xaf"));      // overlong
  CHECK(!is_utf8("\xed\xa0\x80"));  // surrogate
  CHECK(crlf_lines("a\nb\r\nc\rd") == "a\r\nb\r\nc\r\nd");
  CHECK(content_disposition("a \"b\".txt") == R"(attachment; filename="a \"b\".txt")");
  CHECK(content_disposition("résumé.pdf") == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf");
  // A long one: numbered continuations on lines of their own (RFC 2231 3).
  std::string long_name;
  for (int i = 0; i < 255; ++i) long_name += "\u00e9";
  auto cd = "Content-Disposition: " + content_disposition(long_name);
  CHECK(longest_line(cd) <= 78);
  CHECK(cd.find("filename*0*=UTF-8''%C3%A9") != std::string::npos);
  std::string joined;  // the continuations' values, in order, decoded
  for (int i = 0;; ++i) {
    auto key = "filename*" + std::to_string(i) + "*=";
    auto at = cd.find(key);
    if (at == std::string::npos) break;
    at += key.size();
    if (i == 0) at += 7;  // UTF-8''
    auto end = cd.find(';', at);
    joined += cd.substr(at, end == std::string::npos ? std::string::npos : end - at);
  }
  std::string decoded;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    if (joined[i] != '%') {
      decoded += joined[i];
      continue;
    }
    decoded += static_cast<char>(std::stoi(joined.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  CHECK(decoded == long_name);
}

TEST_CASE("relay replies: accepted, temporary, permanent, unknown, failed") {
  const std::vector<std::pair<char, std::string>> start{{'<', "220 relay ESMTP"},
                                                        {'>', "EHLO me"},
                                                        {'<', "250-relay"},
                                                        {'<', "250 SIZE 1000"},
                                                        {'>', "MAIL FROM:<a@x.y>"},
                                                        {'<', "250 OK"},
                                                        {'>', "RCPT TO:<b@x.y>"},
                                                        {'<', "250 OK"},
                                                        {'>', "DATA"},
                                                        {'<', "354 go ahead"}};
  auto with = [&](std::vector<std::pair<char, std::string>> more) {
    auto all = start;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  auto ok = converse(with({{'<', "250 2.0.0 queued as X"}}), true);
  CHECK(ok.status == send_status::accepted);
  CHECK(ok.reply.code == 250);
  CHECK(ok.reply.text == "2.0.0 queued as X");
  CHECK(ok.accepted() == std::vector<std::string>{"b@x.y"});

  auto later = converse(with({{'<', "451 4.3.0 try later"}}), false, "weird reply");
  CHECK(later.status == send_status::temporary);
  CHECK(later.reply.code == 451);

  auto no = converse(with({{'<', "550-5.7.1 no"}, {'<', "550 5.7.1 policy"}}), false);
  CHECK(no.status == send_status::permanent);
  CHECK(no.reply.text == "5.7.1 no\n5.7.1 policy");

  auto lost = converse(start, false, "connection died");
  CHECK(lost.status == send_status::unknown);
  CHECK(lost.error.find("connection died") != std::string::npos);

  auto auth = converse({{'<', "220 relay"}, {'>', "AUTH PLAIN x"}, {'<', "535 5.7.8 bad"}}, false,
                       "login denied");
  CHECK(auth.status == send_status::failed);  // a configuration problem: retryable
  CHECK(auth.reply.code == 535);

  auto refused = converse({{'<', "220 relay"}}, false, "Connection refused");
  CHECK(refused.status == send_status::failed);

  auto mail =
      converse({{'<', "220 r"}, {'>', "MAIL FROM:<a@x.y>"}, {'<', "553 5.1.8 bad sender"}}, false);
  CHECK(mail.status == send_status::permanent);
}

TEST_CASE("relay replies: refused recipients") {
  auto base = std::vector<std::pair<char, std::string>>{
      {'<', "220 r"},           {'>', "MAIL FROM:<a@x.y>"},      {'<', "250 OK"},
      {'>', "RCPT TO:<b@x.y>"}, {'<', "550 5.1.1 no such user"}, {'>', "RCPT TO:<c@x.y>"}};
  auto all_permanent = base;
  all_permanent.push_back({'<', "550 5.1.1 unknown"});
  CHECK(converse(all_permanent, false).status == send_status::permanent);
  auto one_later = base;
  one_later.push_back({'<', "450 4.2.1 mailbox busy"});
  auto r = converse(one_later, false);
  CHECK(r.status == send_status::temporary);
  CHECK(r.reply.code == 450);
  // libcurl says QUIT once every recipient is refused: the relay's 221 is
  // nobody's reply, and the refusals still decide.
  for (auto* quit : {"QUIT", "RSET"}) {
    CAPTURE(quit);
    auto then_quit = all_permanent;
    then_quit.insert(then_quit.end(), {{'>', quit}, {'<', "221 2.0.0 Bye"}});
    auto q = converse(then_quit, false, "RCPT failed: 550");
    CHECK(q.status == send_status::permanent);
    CHECK(q.reply.code == 550);
    CHECK(q.reply.text == "5.1.1 no such user");
    REQUIRE(q.recipients.size() == 2);
    CHECK(q.accepted().empty());
    auto later_quit = one_later;
    later_quit.insert(later_quit.end(), {{'>', quit}, {'<', "221 2.0.0 Bye"}});
    auto lq = converse(later_quit, false);
    CHECK(lq.status == send_status::temporary);
    CHECK(lq.reply.code == 450);
  }
  // A DATA refused, then QUIT: DATA's reply decides.
  auto data_refused = base;
  data_refused.insert(
      data_refused.end(),
      {{'<', "250 OK"}, {'>', "DATA"}, {'<', "554 5.7.1 no"}, {'>', "QUIT"}, {'<', "221 Bye"}});
  auto d = converse(data_refused, false);
  CHECK(d.status == send_status::permanent);
  CHECK(d.reply.code == 554);
  auto partial = base;
  partial.insert(partial.end(),
                 {{'<', "250 OK"}, {'>', "DATA"}, {'<', "354 go"}, {'<', "250 queued"}});
  auto p = converse(partial, true);
  CHECK(p.status == send_status::accepted);
  CHECK(p.accepted() == std::vector<std::string>{"c@x.y"});
  REQUIRE(p.recipients.size() == 2);
  CHECK(p.recipients[0].reply.code == 550);
}

TEST_CASE("throttle: messages per second per recipient domain") {
  using namespace std::chrono_literals;
  domain_throttle t(2);  // 2/s: bursts of 2, then one every 500 ms
  auto now = domain_throttle::clock::now();
  auto a1 = t.reserve("j1", {"a.com"}, now, 1s);
  auto a2 = t.reserve("j2", {"a.com"}, now, 1s);
  auto a3 = t.reserve("j3", {"a.com"}, now, 1s);
  CHECK(a1.now);
  CHECK(a1.at == now);
  CHECK(a2.at == now);
  CHECK(a3.now);
  CHECK(a3.at == now + 500ms);
  // Another domain is not held back.
  CHECK(t.reserve("j4", {"b.com"}, now, 0ms).at == now);
  // Over the caller's wait: snooze until the slot, which is kept for the job.
  auto a4 = t.reserve("j5", {"a.com"}, now, 100ms);
  CHECK(!a4.now);
  CHECK(a4.at == now + 1000ms);
  auto a5 = t.reserve("j6", {"a.com"}, now, 100ms);
  CHECK(!a5.now);
  CHECK(a5.at == now + 1500ms);  // the next job gets the next slot, not the same one
  // j5 back too early snoozes again for the same slot; back in time, it sends.
  auto early = t.reserve("j5", {"a.com"}, now + 200ms, 100ms);
  CHECK(!early.now);
  CHECK(early.at == now + 1000ms);
  auto back = t.reserve("j5", {"a.com"}, now + 1200ms, 100ms);
  CHECK(back.now);
  CHECK(back.at == now + 1200ms);
  // Its booking is used up: a third return books anew, after j6.
  CHECK(t.reserve("j5", {"a.com"}, now + 1200ms, 5s).at == now + 2000ms);
  // A message to two domains waits for the later one and books both.
  auto both = t.reserve("j7", {"a.com", "c.com"}, now, 5s);
  CHECK(both.at == now + 2500ms);
  CHECK(t.reserve("j8", {"c.com"}, now, 5s).at == now + 2500ms);  // c's burst is used up by then
  // Off.
  domain_throttle off(0);
  for (int i = 0; i < 100; ++i) CHECK(off.reserve("j", {"a.com"}, now, 0ms).now);
  CHECK(off.tracked() == 0);
}

// What an attachment's content may be: the API's schema (contentEncoding)
// and the worker decide alike, so nothing accepted ends dead for it.
TEST_CASE(
    "schema: an attachment's base64 is refused at the API exactly when the worker refuses it") {
  jobs::schema_registry reg(std::string(JOBS_SOURCE_DIR) + "/schemas/jobs");
  for (const char* content : {"", "aGk=", "aA==", "aGkh", "+/+/", "aGk", "aA", "aA=", "a",
                              "a===", "aGk==", "a=Gk", "aG k", "aGk=\n", "!!!!", "-_-_", "===="}) {
    CAPTURE(content);
    json::value payload = json::parse(minimal);
    payload.as_object()["attachments"] = json::array{{{"filename", "a"}, {"content", content}}};
    const auto refused = reg.validate("email", "send", payload);
    CHECK(refused.has_value() == !error_of(json::serialize(payload)).empty());
    if (refused) CHECK(refused->pointer == "/payload/attachments/0/content");
  }
}

TEST_CASE("schema: header injection and bad addresses are 400 at the API") {
  jobs::schema_registry reg(std::string(JOBS_SOURCE_DIR) + "/schemas/jobs");
  auto check = [&](const std::string& payload, const std::string& pointer) {
    auto p = reg.validate("email", "send", json::parse(payload));
    REQUIRE_MESSAGE(p, payload);
    CHECK(p->code == "payload_invalid");
    CHECK_MESSAGE(p->pointer == pointer, payload, " -> ", p->pointer, ": ", p->detail);
  };
  CHECK(!reg.validate("email", "send", json::parse(minimal)));
  check(
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"Hi\r\nBcc: x@evil.example","text":"x"})",
      "/payload/subject");
  // NUL never reaches the regexes (valijson hands them C strings): the API
  // refuses it after the schema (api/submission.cpp), the worker again.
  check(
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","headers":{"X-A":"1\n2"}})",
      "/payload/headers/X-A");
  check(
      R"({"from":"a@example.com","to":["b@example.org\nBcc: c@evil.example"],"subject":"s","text":"x"})",
      "/payload/to/0");
  check(R"({"from":"bad","to":["b@example.org"],"subject":"s","text":"x"})", "/payload/from");
  check(
      R"({"from":"a@example.com","to":["b@example.org"],"subject":"s","text":"x","headers":{"Bcc":"x"}})",
      "/payload/headers");  // valijson names the member whose names failed
  check(R"({"from":"a@example.com","to":["b@example.org"],"subject":"s"})", "/payload");
  // The schema's own examples are valid.
  auto ok =
      R"({"from":{"email":"news@example.com","name":"Zoë"},"to":[{"email":"ada@example.org","name":"Ada"}],
    "bcc":["audit@example.com"],"subject":"Größer","text":"t","html":"<p>h</p>",
    "headers":{"List-Unsubscribe":"<mailto:u@example.com>","X-Campaign":"c1"},
    "attachments":[{"filename":"hello.txt","content_type":"text/plain","content":"aGVsbG8="}],"tags":["news"]})";
  auto p = reg.validate("email", "send", json::parse(ok));
  CHECK_MESSAGE(!p, (p ? p->detail + " at " + p->pointer : ""));
}

TEST_CASE("email options: TLS modes, default ports, credentials only over TLS") {
  auto opts = [](std::map<std::string, std::string> env) {
    return jobs::email_options_from(jobs::load_config(env));
  };
  auto d = opts({});
  CHECK(d.relay.host.empty());
  CHECK(d.relay.port == 587);
  CHECK(d.relay.tls == tls_mode::starttls);
  CHECK(d.relay.verify);
  CHECK(opts({{"JOBS_SMTP_TLS", "implicit"}}).relay.port == 465);
  CHECK(opts({{"JOBS_SMTP_TLS", "off"}, {"JOBS_SMTP_PORT", "25"}}).relay.port == 25);
  CHECK(opts({{"JOBS_SMTP_USER", "u"}, {"JOBS_SMTP_PASSWORD", "p"}}).relay.user == "u");
  CHECK_THROWS_AS(opts({{"JOBS_SMTP_TLS", "off"}, {"JOBS_SMTP_USER", "u"}}), jobs::config_error);
  CHECK_THROWS_AS(opts({{"JOBS_SMTP_TLS", "starttls-optional"}, {"JOBS_SMTP_USER", "u"}}),
                  jobs::config_error);
  CHECK_THROWS_AS(opts({{"JOBS_EMAIL_MESSAGE_ID_DOMAIN", "not a host"}}), jobs::config_error);
  CHECK_THROWS_WITH_AS(opts({{"JOBS_SMTP_USER", "u"}}), doctest::Contains("password is empty"),
                       jobs::config_error);
}
