#pragma once
// Messages per second per recipient domain, so a burst to one provider does
// not get the relay throttled or blocked there.
//
// Each domain is a GCRA (a token bucket): `rate` messages per second on
// average, bursts up to one second's worth (at least one message). A message
// to several domains needs a slot in each and takes them all at once.
//
// reserve() always books the message's slots, at the earliest time they are
// all free. If that is within `max_wait`, the caller sleeps until then and
// sends. Otherwise the booking is kept under the message's key (the job id)
// and the caller snoozes the job until then, freeing its thread; when the
// job comes back, reserve() with the same key hands it its booked time
// instead of booking again. So a burst of N messages to one domain gets N
// distinct slots, not N snoozes racing for each slot. A booking whose job
// never comes back (cancelled, or resumed by another worker) only costs its
// slot. The limit is per worker process: N workers send up to N x rate.
//
// Thread-safety: every member may be called from any number of threads.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace jobs::email {

class domain_throttle {
 public:
  using clock = std::chrono::steady_clock;

  /// `rate` messages per second per domain; 0 turns the throttle off.
  explicit domain_throttle(double rate) : rate_(rate) {}

  struct booking {
    bool now = false;  ///< true: send at `at` (within max_wait); false: snooze until `at`
    clock::time_point at;
  };

  booking reserve(const std::string& key, const std::vector<std::string>& domains,
                  clock::time_point now, clock::duration max_wait);

  /// Domains and kept bookings tracked (stale ones are dropped as new ones come).
  std::size_t tracked() const;

 private:
  const double rate_;
  mutable std::mutex mu_;
  std::map<std::string, clock::time_point, std::less<>> tat_;   ///< theoretical arrival time
  std::map<std::string, clock::time_point, std::less<>> kept_;  ///< key -> booked time
};

}  // namespace jobs::email
