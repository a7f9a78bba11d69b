// The JSON log lines (common/log.hpp), read back from stderr.
#include "common/log.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace {

// What `fn` writes to stderr (the log's one destination).
template <class Fn>
std::string stderr_of(Fn fn) {
  std::FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(::fileno(tmp), STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::rewind(tmp);
  std::string out;
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, tmp)) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

}  // namespace

TEST_CASE("a log line writes numbers as people do, not as 1.5E0") {
  auto line = stderr_of([] {
    jobs::log_info("scaling", {{"ready", 0.0}, {"rate", 1.523478}, {"workers", 3}, {"q", "email"}});
  });
  CHECK(line.find(R"("msg":"scaling","ready":0,"rate":1.523478,"workers":3,"q":"email"})") !=
        std::string::npos);
  CHECK(line.find("E0") == std::string::npos);
  CHECK(line.back() == '\n');
}
