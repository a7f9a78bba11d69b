// Fuzz target: the email address and header checks. The input is tried as an
// address, a header name and value, and (when it is JSON) an email.send
// payload. Whatever is accepted must never put CR or LF into a header line.
#include "common/base64.hpp"
#include "common/text.hpp"
#include "workers/email/message.hpp"

#include <boost/json/parse.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace em = jobs::email;

namespace {

void no_injection(std::string_view header_line) {
  // Folding (CRLF followed by a space) is the only line break allowed.
  for (std::size_t i = 0; i < header_line.size(); ++i) {
    char c = header_line[i];
    if (c == '\0') std::abort();
    if (c == '\r' || c == '\n') {
      if (c != '\r' || i + 2 >= header_line.size() || header_line[i + 1] != '\n' ||
          header_line[i + 2] != ' ')
        std::abort();
      i += 1;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (em::valid_address(in)) {
    if (!jobs::is_field_value(in)) std::abort();
    (void)em::domain_of(in);
    no_injection(em::format_mailbox({std::string(in), "Name \"x\""}));
  }
  (void)em::allowed_custom_header(in);
  if (jobs::is_utf8(in)) {
    no_injection(em::encode_words(in));
    no_injection(em::encode_unstructured(in));
    no_injection(em::content_disposition(in));
  }
  (void)em::crlf_lines(in);
  (void)jobs::decode_base64(in, jobs::base64_padding::required);
  (void)jobs::decode_base64(in, jobs::base64_padding::optional);

  boost::system::error_code ec;
  auto payload = boost::json::parse(in, ec);
  if (ec) return 0;
  auto m = em::parse_message(payload, 1 << 16);
  if (auto* msg = std::get_if<em::message>(&m)) {
    for (const auto& h :
         em::top_headers(*msg, "<id@example.com>", "Sun, 29 Nov 2026 00:00:00 +0000"))
      no_injection(h);
  }
  return 0;
}
