#include "api/key_listener.hpp"

#include "common/db.hpp"
#include "common/keys.hpp"
#include "common/log.hpp"

#include <pqxx/pqxx>

#include <chrono>

namespace jobs {

namespace {

class receiver final : public pqxx::notification_receiver {
 public:
  receiver(pqxx::connection_base& c, const std::function<void()>& forget)
      : pqxx::notification_receiver(c, keys_channel), forget_(forget) {}
  void operator()(const std::string&, int) override { forget_(); }

 private:
  const std::function<void()>& forget_;
};

}  // namespace

key_listener::key_listener(std::string pg_url, std::function<void()> forget)
    : pg_url_(std::move(pg_url)), forget_(std::move(forget)), thread_([this] { run(); }) {}

key_listener::~key_listener() {
  stopping_ = true;
  thread_.join();
}

void key_listener::run() {
  auto backoff = std::chrono::milliseconds(100);
  bool warned = false;
  while (!stopping_) {
    try {
      auto c = pg_connect(pg_url_);
      receiver r(*c, forget_);
      // Anything revoked while we were not listening.
      forget_();
      backoff = std::chrono::milliseconds(100);
      warned = false;
      while (!stopping_) c->await_notification(0, 500000);
    } catch (const std::exception& e) {
      forget_();
      if (!warned) log_warn("key revocation listener lost PostgreSQL", {{"error", e.what()}});
      warned = true;
      for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stopping_;
           waited += std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace jobs
