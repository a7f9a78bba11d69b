#pragma once
// Work measured on a thread's own CPU clock: the noop handler's `cpu_ms`
// (workers/processing/noop.cpp) and jobs-bench's probe of the cores' speed
// (test/bench/measure.cpp) spin the same way.
// Thread-safety: pure functions.

#include <chrono>
#include <cstdint>

namespace jobs {

/// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID): a busy machine
/// stretches a span measured on it instead of shortening it.
std::chrono::nanoseconds thread_cpu_time();

/// `steps` steps of a linear congruential chain from `x`, each needing the
/// one before, so no two overlap and no compiler folds them together.
inline std::uint64_t integer_chain(std::uint64_t x, int steps) {
  for (int i = 0; i < steps; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));
  }
  return x;
}

}  // namespace jobs
