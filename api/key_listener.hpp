#pragma once
// Tells an API process at once when a key is revoked anywhere: a thread
// LISTENs on common/keys.hpp's `keys_channel` and calls `forget` on every
// notification. While it has no connection (PostgreSQL down, reconnecting)
// it calls `forget` too, since notifications may have been missed then;
// the cache is then refilled from PostgreSQL one lookup at a time.
//
// Thread-safety: `forget` runs on the listener's thread.

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace jobs {

class key_listener {
 public:
  key_listener(std::string pg_url, std::function<void()> forget);
  ~key_listener();  ///< stops within half a second

 private:
  void run();

  std::string pg_url_;
  std::function<void()> forget_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace jobs
