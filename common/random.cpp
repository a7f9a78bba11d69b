#include "common/random.hpp"

#include <openssl/rand.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <cstring>
#include <stdexcept>

namespace jobs {

namespace {

// Bumped in a forked child: every block filled before the fork is stale.
std::atomic<unsigned> generation{0};

void forked() { generation.fetch_add(1, std::memory_order_relaxed); }

// Registered on first use (not at static initialisation, whose order
// across files is unspecified).
bool fork_hook() {
  static const bool ok = pthread_atfork(nullptr, nullptr, forked) == 0;
  return ok;
}

struct pool {
  std::array<unsigned char, random_detail::block> bytes;
  std::size_t used = random_detail::block;  // empty until the first draw
  unsigned generation = 0;
};

}  // namespace

void random_bytes(std::span<unsigned char> out) {
  thread_local pool p;
  if (!fork_hook()) throw std::runtime_error("cannot register the fork handler of random_bytes");
  if (auto g = generation.load(std::memory_order_relaxed); g != p.generation) {
    p.generation = g;
    p.used = p.bytes.size();
  }
  if (out.size() > p.bytes.size()) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
      throw std::runtime_error("RAND_bytes failed");
    return;
  }
  if (p.bytes.size() - p.used < out.size()) {
    p.used = p.bytes.size();  // a failed refill leaves nothing to hand out
    if (RAND_bytes(p.bytes.data(), static_cast<int>(p.bytes.size())) != 1)
      throw std::runtime_error("RAND_bytes failed");
    p.used = 0;
  }
  std::memcpy(out.data(), p.bytes.data() + p.used, out.size());
  // Bytes handed out are not kept.
  std::memset(p.bytes.data() + p.used, 0, out.size());
  p.used += out.size();
}

}  // namespace jobs
