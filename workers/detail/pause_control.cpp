#include "workers/detail/pause_control.hpp"

#include "common/admin_store.hpp"

namespace jobs::detail {

class pause_control::listener final : public pqxx::notification_receiver {
 public:
  listener(pqxx::connection_base& c, pause_control& owner)
      : pqxx::notification_receiver(c, pause_channel), owner_(owner) {}
  void operator()(const std::string& payload, int) override {
    if (payload == owner_.queue_) owner_.stale_ = true;
  }

 private:
  pause_control& owner_;
};

pause_control::pause_control(std::string queue, std::chrono::milliseconds recheck)
    : queue_(std::move(queue)), recheck_(recheck) {}

pause_control::~pause_control() = default;

void pause_control::attach(pqxx::connection_base& c) {
  listener_ = std::make_unique<listener>(c, *this);
  stale_ = true;
}

void pause_control::detach() { listener_.reset(); }

bool pause_control::paused(pqxx::connection& c) {
  auto now = std::chrono::steady_clock::now();
  if (!stale_ && now < next_check_) return paused_;
  paused_ = queue_paused(c, queue_);
  stale_ = false;
  next_check_ = now + recheck_;
  return paused_;
}

}  // namespace jobs::detail
