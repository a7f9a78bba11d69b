// The admin dashboard's backend calls: the defaults (no dashboard) and the
// platform's, each one common/admin_store.hpp call on the read pool.
#include "api/async.hpp"
#include "api/platform.hpp"

namespace jobs {

namespace {
[[noreturn]] void no_admin() { throw std::runtime_error("this backend has no admin dashboard"); }
}  // namespace

boost::asio::awaitable<std::optional<std::string>> api_backend::job_events(const tenant_id&,
                                                                           const job_id&) {
  no_admin();
  co_return std::nullopt;
}

boost::asio::awaitable<long> api_backend::count_bulk(const tenant_id&, const job_filter&,
                                                     bulk_action) {
  no_admin();
  co_return 0;
}

boost::asio::awaitable<bulk_outcome> api_backend::apply_bulk(const tenant_id&, const job_filter&,
                                                             bulk_action) {
  no_admin();
  co_return bulk_outcome{};
}

boost::asio::awaitable<bool> api_backend::set_queue_paused(const std::string&, bool,
                                                           const std::string&) {
  no_admin();
  co_return false;
}

boost::asio::awaitable<std::string> api_backend::queue_overview() {
  no_admin();
  co_return std::string();
}

boost::asio::awaitable<std::optional<std::string>> api_backend::queue_history(const std::string&) {
  no_admin();
  co_return std::nullopt;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::job_events(const tenant_id& t,
                                                                                const job_id& id) {
  auto query = [t, id](pqxx::connection& c) { return job_events_json(c, t, id); };
  auto events = co_await db_call(reads_, query);
  co_return events;
}

boost::asio::awaitable<long> platform_backend::count_bulk(const tenant_id& t, const job_filter& f,
                                                          bulk_action a) {
  auto query = [t, f, a](pqxx::connection& c) { return jobs::count_bulk(c, t, f, a); };
  auto n = co_await db_call(reads_, query);
  co_return n;
}

boost::asio::awaitable<bulk_outcome> platform_backend::apply_bulk(const tenant_id& t,
                                                                  const job_filter& f,
                                                                  bulk_action a) {
  auto op = [t, f, a](pqxx::connection& c) { return jobs::apply_bulk(c, t, f, a); };
  auto out = co_await db_call(reads_, op);
  co_return out;
}

boost::asio::awaitable<bool> platform_backend::set_queue_paused(const std::string& queue,
                                                                bool paused,
                                                                const std::string& by) {
  auto op = [queue, paused, by](pqxx::connection& c) {
    pqxx::work w(c);
    bool changed = jobs::set_queue_paused(w, queue, paused, by);
    w.commit();
    return changed;
  };
  auto changed = co_await db_call(reads_, op);
  co_return changed;
}

boost::asio::awaitable<std::string> platform_backend::queue_overview() {
  auto query = [](pqxx::connection& c) { return queue_overview_json(c); };
  auto json = co_await db_call(reads_, query);
  co_return json;
}

boost::asio::awaitable<std::optional<std::string>> platform_backend::queue_history(
    const std::string& range) {
  auto query = [range](pqxx::connection& c) { return queue_history_json(c, range); };
  auto json = co_await db_call(reads_, query);
  co_return json;
}

}  // namespace jobs
