#include "common/job.hpp"

#include "common/random.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>

namespace jobs {

bool is_claimable(job_state s) noexcept { return s == job_state::queued; }

bool can_transition(job_state from, job_state to) noexcept {
  using enum job_state;
  if (to == cancelled) return !is_final(from);
  switch (from) {
    case scheduled: return to == queued || to == running;
    case queued: return to == running;
    case running:
      return to == succeeded || to == failed || to == dead || to == scheduled || to == queued;
    case failed: return to == queued || to == running || to == scheduled;
    case dead: return to == scheduled;
    case succeeded:
    case cancelled: return false;
  }
  return false;
}

job_id new_job_id() {
  std::array<unsigned char, 16> b{};
  random_bytes(b);
  auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  // RFC 9562 method 1: rand_a is a counter within the millisecond, so ids
  // made by this process sort in the order they were made. The state packs
  // (milliseconds << 12 | counter); a full counter borrows the next ms.
  static std::atomic<std::uint64_t> last{0};
  std::uint64_t prev = last.load(std::memory_order_relaxed), next;
  do {
    std::uint64_t prev_ms = prev >> 12;
    next = now > prev_ms ? (now << 12) | (b[6] & 0x3ffu) : prev + 1;
  } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
  std::uint64_t ms = next >> 12, seq = next & 0xfff;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (seq >> 8));
  b[7] = static_cast<unsigned char>(seq & 0xff);
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(hex[b[i] >> 4]);
    out.push_back(hex[b[i] & 0xf]);
  }
  return job_id{std::move(out)};
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace jobs
