#pragma once
// Structured logs: one JSON object per line on stderr.
//
//   log_info("job completed", {{"job_id", id}, {"ms", 12}});
//   -> {"ts":"2026-11-22T04:15:48.123Z","level":"info","msg":"job completed","job_id":"…","ms":12}
//
// Never log secrets: API keys, passwords, connection URLs with credentials
// (use `redact_url`).
//
// Thread-safety: every call writes its line with one write(2), so lines from
// different threads never interleave.

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace jobs {

enum class log_level { debug, info, warn, error };

/// Sets the minimum level written; call once at start-up ("debug", "info", …).
void set_log_level(std::string_view level);
/// Fields every later line carries (a worker: its queue and id, so that the
/// lines of a supervisor's workers, written to one stream, say whose they
/// are); a line's own fields of the same name win. Call at start-up, before
/// other threads log.
void set_log_context(boost::json::object fields);
bool log_enabled(log_level l) noexcept;
void log_write(log_level l, std::string_view msg, boost::json::object fields = {});

inline void log_debug(std::string_view m, boost::json::object f = {}) {
  log_write(log_level::debug, m, std::move(f));
}
inline void log_info(std::string_view m, boost::json::object f = {}) {
  log_write(log_level::info, m, std::move(f));
}
inline void log_warn(std::string_view m, boost::json::object f = {}) {
  log_write(log_level::warn, m, std::move(f));
}
inline void log_error(std::string_view m, boost::json::object f = {}) {
  log_write(log_level::error, m, std::move(f));
}

/// At most one line a period for a message that repeats per request or per
/// job while a server is away (an outage fails each of thousands a second
/// alike): the lines in between are counted, and the next line written
/// carries how many were left out ("suppressed"). Lines are sampled apart
/// by their "error" field, so that another failure is not hidden behind an
/// outage's (at most 64 kinds tracked at once). Thread-safe.
class log_sampler {
 public:
  using clock = std::chrono::steady_clock;
  explicit log_sampler(clock::duration period) : period_(period) {}

  /// Writes the line, adding "suppressed" when lines were left out since the
  /// last one, or counts it.
  void write(log_level l, std::string_view msg, boost::json::object fields = {});

  /// Whether a line of kind `kind` due at `now` is written; when it is,
  /// `suppressed` is set to the number of that kind left out before it.
  bool admit(clock::time_point now, std::int64_t& suppressed, std::string_view kind = {});

 private:
  struct kind_state {
    clock::time_point last;
    std::int64_t left_out = 0;
  };
  clock::duration period_;
  std::mutex mu_;
  std::map<std::string, kind_state, std::less<>> kinds_;
};

/// The URL (or comma-separated URLs, as a broker list) with any
/// `user:password@` password replaced by "***". For PostgreSQL's, which
/// holds passwords in more places, redact_pg_url (common/db.hpp).
std::string redact_url(std::string_view url);

}  // namespace jobs
