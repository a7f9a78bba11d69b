#include "common/random.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <set>
#include <thread>
#include <vector>

using namespace jobs;

namespace {
using id = std::array<unsigned char, 16>;
id draw() {
  id b{};
  random_bytes(b);
  return b;
}
}  // namespace

TEST_CASE("random_bytes: no draw repeats, across many blocks and across threads") {
  std::set<id> seen;
  // 4,000 draws of 16 bytes span ~60 refills of the per-thread block.
  for (int i = 0; i < 4000; ++i) CHECK(seen.insert(draw()).second);
  std::vector<id> other(4000);
  std::thread t([&] {
    for (auto& b : other) b = draw();
  });
  t.join();
  for (const auto& b : other) CHECK(seen.insert(b).second);
  // Not all zero: the bytes come from the generator, not the cleared block.
  id zero{};
  CHECK(seen.count(zero) == 0);
}

TEST_CASE("random_bytes: a request larger than the block is served whole") {
  std::vector<unsigned char> big(random_detail::block * 3 + 7, 0);
  random_bytes(big);
  std::size_t zeros = 0;
  for (auto c : big) zeros += c == 0;
  CHECK(zeros < big.size() / 64);  // ~1/256 expected
}

TEST_CASE("random_bytes: a forked child does not repeat the parent's bytes") {
  draw();  // the block is filled, and bytes remain in it
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto b = draw();
    [[maybe_unused]] auto n = ::write(fds[1], b.data(), b.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  id child{};
  REQUIRE(::read(fds[0], child.data(), child.size()) == static_cast<ssize_t>(child.size()));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(draw() != child);
}
