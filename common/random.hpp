#pragma once
// Random bytes for identifiers (job ids, trace and span ids), from OpenSSL's
// CSPRNG in blocks of `block` bytes a thread.
//
// Each RAND_bytes call costs a getpid() system call (OpenSSL's fork check)
// and a lock; at three ids a submitted job that was a fifth of the API's
// system calls. Drawing from a per-thread block of its output keeps the
// same generator at one call per ~25 jobs. A forked child discards the
// blocks it inherited (pthread_atfork), so parent and child never hand out
// the same bytes.
//
// Secrets (API keys, webhook secrets) call RAND_bytes directly: their bytes
// should not sit in memory before they are needed.
//
// Thread-safety: any thread; each has its own block.

#include <cstddef>
#include <span>

namespace jobs {

/// Fills `out` with random bytes; throws std::runtime_error if OpenSSL cannot.
void random_bytes(std::span<unsigned char> out);

namespace random_detail {
inline constexpr std::size_t block = 1024;
}

}  // namespace jobs
