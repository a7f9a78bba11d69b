// The circuit breaker's gate (workers/webhooks/endpoints.hpp): what an
// endpoint's state, read from PostgreSQL, lets a delivery do.
#include "workers/webhooks/endpoints.hpp"

#include <doctest/doctest.h>

using namespace jobs::webhooks;
using namespace std::chrono_literals;

TEST_CASE("the breaker's gate: closed, paused, half-open with and without a trial out") {
  auto now = std::chrono::steady_clock::now();
  auto at = [&](std::chrono::milliseconds from_now) {
    return breaker_time{std::chrono::system_clock::now() + from_now, now + from_now};
  };
  endpoint ep;
  CHECK(gate(ep, 3, now) == breaker_gate::send);
  ep.consecutive_failures = 2;
  CHECK(gate(ep, 3, now) == breaker_gate::send);
  ep.consecutive_failures = 3;
  CHECK(gate(ep, 3, now) == breaker_gate::trial);
  ep.paused_until = at(5s);
  CHECK(gate(ep, 3, now) == breaker_gate::wait_pause);
  CHECK(gate(ep, 3, now + 5s) == breaker_gate::trial);  // the pause passed since it was read
  ep.trial_until = at(2s);
  CHECK(gate(ep, 3, now + 5s) == breaker_gate::trial);  // and the trial's lease too
  ep.paused_until.reset();
  CHECK(gate(ep, 3, now) == breaker_gate::wait_trial);
  CHECK(gate(ep, 3, now + 2s) == breaker_gate::trial);
  // A threshold raised since: closed again for this worker.
  CHECK(gate(ep, 20, now) == breaker_gate::send);
}
