#include "api/dead_letter_recovery.hpp"

#include "common/db.hpp"
#include "common/log.hpp"
#include "common/store.hpp"
#include "common/trace.hpp"
#include "queues/message.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <unordered_map>

namespace jobs {

namespace {
constexpr const char* rescues_header = "x-jobs-rescues";
constexpr int idle_poll_ms = 500;
constexpr auto max_backoff = std::chrono::seconds(5);

int rescues_of(const delivery& d) {
  auto it = d.headers.find(rescues_header);
  if (it == d.headers.end()) return 0;
  int n = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
  return ec == std::errc() && end == it->second.data() + it->second.size() && n > 0 ? n : 0;
}
}  // namespace

dead_letter_recovery::inbox::inbox() : fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd < 0) throw std::runtime_error("eventfd failed");
}

dead_letter_recovery::inbox::~inbox() { ::close(fd); }

void dead_letter_recovery::inbox::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

void dead_letter_recovery::inbox::push(std::uint64_t generation, std::uint64_t tag, bool ok) {
  {
    std::lock_guard lk(mu);
    confirms.emplace_back(generation, tag, ok);
  }
  wake();
}

std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> dead_letter_recovery::inbox::take() {
  std::uint64_t drained;
  [[maybe_unused]] auto n = ::read(fd, &drained, sizeof drained);
  std::lock_guard lk(mu);
  return std::exchange(confirms, {});
}

dead_letter_recovery::dead_letter_recovery(std::string pg_url, std::string amqp_url,
                                           int heartbeat_s, topology_options topology,
                                           publisher& pub,
                                           metrics::family<metrics::counter>* counts)
    : pg_url_(std::move(pg_url)),
      pub_(pub),
      brokers_(amqp_url),
      heartbeat_s_(heartbeat_s),
      topology_(topology),
      counts_(counts) {
  thread_ = std::thread([this] { run(); });
}

dead_letter_recovery::~dead_letter_recovery() {
  stopping_ = true;
  inbox_->wake();
  thread_.join();
}

void dead_letter_recovery::run() {
  auto backoff = std::chrono::milliseconds(100);
  bool outage_logged = false;
  while (!stopping_) {
    try {
      if (!amqp_) {
        amqp_ = std::make_unique<consumer>(brokers_.connect(heartbeat_s_),
                                           std::string(rescue_queue), prefetch, topology_);
        ++generation_;
        backoff = std::chrono::milliseconds(100);
        if (outage_logged) log_info("dead-letter recovery consuming again");
        outage_logged = false;
      }
      std::vector<delivery> got;
      amqp_->poll(got, idle_poll_ms, inbox_->fd);
      settle_confirms();
      if (!got.empty()) handle(got);
    } catch (const std::exception& e) {
      if (!outage_logged)
        log_warn("dead-letter recovery interrupted; retrying with backoff", {{"error", e.what()}});
      outage_logged = true;
      // Unacked copies go back to jobs.rescue with the channel.
      amqp_.reset();
      db_.reset();
      inbox_->take();  // confirms for the old channel's tags: void (and a stop's wake)
      if (stopping_) break;
      struct pollfd p {
        inbox_->fd, POLLIN, 0
      };
      ::poll(&p, 1, static_cast<int>(backoff.count()));
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
    }
  }
}

void dead_letter_recovery::count(const char* action) {
  if (counts_) counts_->with({action}).inc();
}

void dead_letter_recovery::settle_confirms() {
  for (auto [generation, tag, ok] : inbox_->take()) {
    if (generation != generation_) continue;  // that channel is gone; the copy comes again
    if (ok) {
      amqp_->ack(tag);
      count("republished");
    } else {
      amqp_->reject(tag, /*requeue=*/true);
    }
  }
}

void dead_letter_recovery::handle(std::vector<delivery>& got) {
  std::vector<std::pair<delivery*, job_message>> messages;
  std::vector<std::string> ids;
  for (auto& d : got) {
    auto m = decode_job_message(d.body);
    if (!m) {
      amqp_->ack(d.tag);  // not a job: jobs.dead keeps its copy
      count("dropped");
      continue;
    }
    ids.push_back(m->id);
    messages.emplace_back(&d, std::move(*m));
  }
  if (messages.empty()) return;
  auto queued = with_reconnect(
      db_, pg_url_,
      [&](pqxx::connection& c) {
        pqxx::read_transaction r(c);
        return queued_among(r, ids);
      },
      pg_connect_hot);
  std::unordered_map<std::string, const due_job*> by_id;
  for (const auto& j : queued) by_id.emplace(j.id, &j);

  for (auto& [d, m] : messages) {
    auto it = by_id.find(m.id);
    if (it == by_id.end()) {
      amqp_->ack(d->tag);  // claimed, finished or gone: nothing waits for this message
      count("dropped");
      continue;
    }
    const due_job& job = *it->second;
    int rescues = rescues_of(*d);
    auto reason = d->headers.contains("x-dead-reason") ? d->headers.at("x-dead-reason")
                                                       : std::string("delivery limit reached");
    if (rescues >= max_rescues) {
      auto error = fmt::format(
          "its message was dead-lettered {} times before any worker claimed it (last: {})",
          rescues + 1, reason);
      bool now_dead = with_reconnect(
          db_, pg_url_,
          [&](pqxx::connection& c) {
            pqxx::work w(c);
            bool b = bury_queued_job(w, job.id, error);
            w.commit();
            return b;
          },
          pg_connect_hot);
      amqp_->ack(d->tag);
      if (now_dead) {
        count("buried");
        log_error("job dead: its message keeps being dead-lettered",
                  {{"job_id", job.id}, {"queue", job.queue}, {"rescues", rescues}});
      }
      continue;
    }
    log_warn("dead-lettered message of a queued job published again", {{"job_id", job.id},
                                                                       {"trace_id", m.trace_id},
                                                                       {"queue", job.queue},
                                                                       {"reason", reason},
                                                                       {"rescue", rescues + 1}});
    publisher::headers extra{{rescues_header, std::to_string(rescues + 1)}};
    if (!m.trace_id.empty()) extra.emplace_back("traceparent", make_traceparent(m.trace_id));
    auto body = encode_job_message({job.id, job.tenant, job.queue, job.type, m.trace_id});
    pub_.publish(
        job.queue, job.id, std::move(body),
        [box = inbox_, generation = generation_, tag = d->tag](bool ok, std::string_view) {
          box->push(generation, tag, ok);
        },
        std::move(extra));
  }
}

}  // namespace jobs
