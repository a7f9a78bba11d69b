#pragma once
// Messages per second per recipient domain, so a burst to one provider does
// not get the relay throttled or blocked there.
//
// Each domain is a GCRA (a token bucket): `rate` messages per second on
// average, bursts up to one second's worth (at least one message). A message
// to several domains needs a slot in each and takes them all at once.
// reserve() either books the slots (the send may go at the time returned,
// at most `max_wait` from now: the caller sleeps until then) or books
// nothing and says when to come back (the caller snoozes the job, freeing
// its thread). The limit is per worker process: N workers send up to N x rate.
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
    bool booked = false;  ///< true: send at `at`; false: come back at `at`
    clock::time_point at;
  };

  booking reserve(const std::vector<std::string>& domains, clock::time_point now,
                  clock::duration max_wait);

  /// Domains currently tracked (stale ones are dropped as new ones come).
  std::size_t tracked() const;

 private:
  const double rate_;
  mutable std::mutex mu_;
  std::map<std::string, clock::time_point, std::less<>> tat_;  ///< theoretical arrival time
};

}  // namespace jobs::email
