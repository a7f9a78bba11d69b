#include "common/signals.hpp"

#include "common/log.hpp"

#include <csignal>
#include <cstring>
#include <ctime>

namespace jobs {

namespace {
sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  return s;
}
}  // namespace

void block_stop_signals() {
  auto s = stop_set();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

stop_signals::stop_signals(std::function<void()> on_stop) {
  thread_ = std::thread([this, on_stop = std::move(on_stop)] {
    auto s = stop_set();
    // Wakes every 200 ms to notice the destructor.
    timespec tick{0, 200'000'000};
    while (!done_) {
      int sig = sigtimedwait(&s, nullptr, &tick);
      if (sig > 0) {
        log_info("signal received; stopping gracefully", {{"signal", strsignal(sig)}});
        on_stop();
        return;
      }
    }
  });
}

stop_signals::~stop_signals() {
  done_ = true;
  thread_.join();
}

}  // namespace jobs
