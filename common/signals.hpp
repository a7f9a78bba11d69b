#pragma once
// Graceful stop on SIGTERM/SIGINT for a daemon's main().
//
//   block_stop_signals();            // first thing: threads started later inherit it
//   ... build the daemon's parts ...
//   stop_signals stop([&] { server.stop(); });   // after what the callback uses
//   server.run();
//
// The signals are taken by a thread of stop_signals' own, which calls
// `on_stop` once, from ordinary code (not a signal handler). Declared after
// the objects the callback touches, it is destroyed (its thread joined)
// before them. SIGPIPE is ignored: a peer closing a socket is an error code.
//
// Thread-safety: one stop_signals per process.

#include <atomic>
#include <functional>
#include <thread>

namespace jobs {

void block_stop_signals();

class stop_signals {
 public:
  explicit stop_signals(std::function<void()> on_stop);
  ~stop_signals();
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace jobs
