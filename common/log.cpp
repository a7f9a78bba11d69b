#include "common/log.hpp"

#include "common/json/json_text.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <utility>

namespace jobs {

namespace {
// The one process-wide setting: a trivial atomic, set once in main.
std::atomic<int> min_level{static_cast<int>(log_level::info)};
constexpr const char* level_names[] = {"debug", "info", "warn", "error"};
// Set once at start-up, before other threads log; read-only after.
boost::json::object& context() {
  static boost::json::object fields;
  return fields;
}
}  // namespace

void set_log_context(boost::json::object fields) { context() = std::move(fields); }

void set_log_level(std::string_view level) {
  for (int i = 0; i < 4; ++i)
    if (level == level_names[i]) min_level = i;
}

bool log_enabled(log_level l) noexcept {
  return static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

void log_write(log_level l, std::string_view msg, boost::json::object fields) {
  if (!log_enabled(l)) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  boost::json::object line;
  line.reserve(fields.size() + context().size() + 3);
  line["ts"] = ts;
  line["level"] = level_names[static_cast<int>(l)];
  line["msg"] = msg;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  for (const auto& kv : context())
    if (!line.contains(kv.key())) line[kv.key()] = kv.value();
  // Numbers as people write them (1.5, not Boost's 1.5E0).
  std::string out = json_text(line);
  out.push_back('\n');
  for (std::size_t off = 0; off < out.size();) {
    auto n = ::write(STDERR_FILENO, out.data() + off, out.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

bool log_sampler::admit(clock::time_point now, std::int64_t& suppressed, std::string_view kind) {
  std::lock_guard lk(mu_);
  auto it = kinds_.find(kind);
  if (it != kinds_.end() && now - it->second.last < period_) {
    ++it->second.left_out;
    return false;
  }
  if (it == kinds_.end()) {
    if (kinds_.size() >= 64) kinds_.clear();  // bounded; their counts are lost
    it = kinds_.emplace(std::string(kind), kind_state{}).first;
  }
  it->second.last = now;
  suppressed = std::exchange(it->second.left_out, 0);
  return true;
}

void log_sampler::write(log_level l, std::string_view msg, boost::json::object fields) {
  if (!log_enabled(l)) return;
  std::int64_t suppressed = 0;
  std::string_view kind;
  if (const auto* e = fields.if_contains("error"); e && e->is_string()) kind = e->get_string();
  if (!admit(clock::now(), suppressed, kind)) return;
  if (suppressed > 0) fields["suppressed"] = suppressed;
  log_write(l, msg, std::move(fields));
}

namespace {
std::string redact_one(std::string_view url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme)
    return std::string(url);
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}
}  // namespace

std::string redact_url(std::string_view url) {
  // A broker address list holds several URLs, each with its password.
  std::string out;
  for (;;) {
    auto comma = url.find(',');
    out += redact_one(url.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    out += ',';
    url.remove_prefix(comma + 1);
  }
}

}  // namespace jobs
