#include "workers/email/relay.hpp"

#include "workers/email/message.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <sys/socket.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace jobs::email {
namespace {

using namespace std::chrono_literals;

// curl 7.69 named the option with three L's; 8.2 fixed the name.
#if LIBCURL_VERSION_NUM >= 0x080200
constexpr CURLoption mail_rcpt_allowfails = CURLOPT_MAIL_RCPT_ALLOWFAILS;
#else
constexpr CURLoption mail_rcpt_allowfails = CURLOPT_MAIL_RCPT_ALLLOWFAILS;
#endif

struct send_state {
  transcript talk;
  const std::atomic<bool>* stop = nullptr;
};

void each_line(std::string_view s, auto&& fn) {
  while (!s.empty()) {
    auto nl = s.find('\n');
    fn(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
}

// curl reports every command it sends and every reply line it reads here
// (it needs CURLOPT_VERBOSE); that is how we learn the relay's replies.
int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
  auto* st = static_cast<send_state*>(user);
  if (!st) return 0;  // between sends (a QUIT when a cached connection closes)
  std::string_view s(data, size);
  if (type == CURLINFO_HEADER_OUT) {
    each_line(s, [&](std::string_view l) {
      if (!l.empty()) st->talk.on_command(l);
    });
  } else if (type == CURLINFO_HEADER_IN) {
    each_line(s, [&](std::string_view l) {
      if (!l.empty()) st->talk.on_reply_line(l);
    });
  }
  return 0;
}

// A stop abandons the send only while the relay cannot have the message yet.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<send_state*>(user);
  return st && st->stop && st->stop->load(std::memory_order_relaxed) && !st->talk.data_accepted();
}

// Owns what one send hands to curl, and takes it back from the handle.
struct transfer {
  CURL* h;
  curl_mime* mime = nullptr;
  curl_slist* headers = nullptr;
  curl_slist* rcpts = nullptr;
  ~transfer() {
    curl_easy_setopt(h, CURLOPT_MIMEPOST, nullptr);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, nullptr);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, nullptr);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    curl_mime_free(mime);
    curl_slist_free_all(headers);
    curl_slist_free_all(rcpts);
  }
};

void add_text_part(curl_mime* into, const std::string& body, const char* type) {
  curl_mimepart* part = curl_mime_addpart(into);
  curl_mime_data(part, body.data(), body.size());
  curl_mime_type(part, type);
  curl_mime_encoder(part, "quoted-printable");
}

// Builds the MIME tree; returns the extra top-level header it needs (if any).
std::string build_mime(CURL* h, const message& m, curl_mime* root) {
  constexpr const char* text_type = "text/plain; charset=utf-8";
  constexpr const char* html_type = "text/html; charset=utf-8";
  std::string top_type;
  if (m.text && m.html && m.attachments.empty()) {
    // The whole message is the alternative: curl takes the root's type from
    // a Content-Type header and adds the boundary.
    add_text_part(root, *m.text, text_type);
    add_text_part(root, *m.html, html_type);
    top_type = "Content-Type: multipart/alternative";
  } else if (m.text && m.html) {
    curl_mime* alt = curl_mime_init(h);
    add_text_part(alt, *m.text, text_type);
    add_text_part(alt, *m.html, html_type);
    curl_mimepart* part = curl_mime_addpart(root);
    curl_mime_subparts(part, alt);
    curl_mime_type(part, "multipart/alternative");
  } else {
    add_text_part(root, m.text ? *m.text : *m.html, m.text ? text_type : html_type);
  }
  for (const auto& a : m.attachments) {
    curl_mimepart* part = curl_mime_addpart(root);
    curl_mime_data(part, a.content.data(), a.content.size());
    curl_mime_type(part, a.content_type.c_str());
    curl_mime_encoder(part, "base64");
    curl_slist* extra = curl_slist_append(
        nullptr, ("Content-Disposition: " + content_disposition(a.filename)).c_str());
    curl_mime_headers(part, extra, 1);
  }
  return top_type;
}

}  // namespace

bool parse_tls_mode(const std::string& text, tls_mode& out) {
  if (text == "starttls")
    out = tls_mode::starttls;
  else if (text == "starttls-optional")
    out = tls_mode::starttls_optional;
  else if (text == "off")
    out = tls_mode::off;
  else if (text == "implicit")
    out = tls_mode::implicit;
  else
    return false;
  return true;
}

struct relay::pool {
  explicit pool(int n) : max(n) {}
  ~pool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }
  // A free handle (with its open connection, if any), or null when stopped.
  CURL* acquire(const std::atomic<bool>* stop) {
    std::unique_lock lk(mu);
    for (;;) {
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
      if (created < max) {
        CURL* h = curl_easy_init();
        if (h) ++created;
        return h;
      }
      if (stop && stop->load(std::memory_order_relaxed)) return nullptr;
      cv.wait_for(lk, 100ms);
    }
  }
  void release(CURL* h) {
    std::lock_guard lk(mu);
    idle.push_back(h);
    cv.notify_one();
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<CURL*> idle;
  int created = 0;
  const int max;
};

relay::relay(relay_options o) : opts_(std::move(o)) {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
  });
  if (opts_.max_connections < 1) throw std::invalid_argument("max_connections must be >= 1");
  pool_ = std::make_unique<pool>(opts_.max_connections);
}

relay::~relay() = default;

send_outcome relay::send(const message& m, const std::vector<std::string>& headers,
                         const std::atomic<bool>* stop) {
  send_outcome out;
  if (opts_.host.empty()) {
    out.error = "no SMTP relay configured (set JOBS_SMTP_HOST)";
    return out;
  }
  CURL* h = pool_->acquire(stop);
  if (!h) {
    out.error = stop && stop->load() ? "stopped while waiting for a relay connection"
                                     : "cannot create a curl handle";
    return out;
  }
  send_state st;
  st.stop = stop;
  char errbuf[CURL_ERROR_SIZE] = {};
  CURLcode rc;
  {
    transfer t{h};
    const bool ipv6 = opts_.host.find(':') != std::string::npos;
    auto url = fmt::format("{}://{}{}{}:{}", opts_.tls == tls_mode::implicit ? "smtps" : "smtp",
                           ipv6 ? "[" : "", opts_.host, ipv6 ? "]" : "", opts_.port);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     opts_.tls == tls_mode::off                 ? CURLUSESSL_NONE
                     : opts_.tls == tls_mode::starttls_optional ? CURLUSESSL_TRY
                                                                : CURLUSESSL_ALL);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, opts_.verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, opts_.verify ? 2L : 0L);
    if (!opts_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (!opts_.user.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, opts_.user.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, opts_.password.c_str());
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(opts_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &st);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &st);
    // Send to the recipients the relay accepts even if it refuses some.
    curl_easy_setopt(h, mail_rcpt_allowfails, 1L);
    auto from = "<" + m.from.address + ">";
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
    for (const auto& r : m.recipients())
      t.rcpts = curl_slist_append(t.rcpts, ("<" + r + ">").c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, t.rcpts);

    t.mime = curl_mime_init(h);
    auto top_type = build_mime(h, m, t.mime);
    for (const auto& line : headers) t.headers = curl_slist_append(t.headers, line.c_str());
    if (!top_type.empty()) t.headers = curl_slist_append(t.headers, top_type.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t.headers);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, t.mime);
    rc = curl_easy_perform(h);
    // curl may keep a connection whose transfer failed in the done phase (no
    // reply to the end of data) and hand it to the next message, which would
    // then wait for a reply that belongs to this one. Shut it down: the
    // next send opens a fresh connection and the handle's cleanup cannot
    // block on a QUIT.
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (rc != CURLE_OK && curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
        fd != CURL_SOCKET_BAD)
      ::shutdown(fd, SHUT_RDWR);
  }
  pool_->release(h);
  std::string error;
  if (rc != CURLE_OK) {
    // The buffer often says no more than the code's own text: then once.
    std::string_view said = errbuf, code = curl_easy_strerror(rc);
    error = said.empty() || said == code ? std::string(code) : fmt::format("{} ({})", said, code);
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) error = "stopped before the relay accepted the message";
  return st.talk.finish(rc == CURLE_OK, error);
}

}  // namespace jobs::email
