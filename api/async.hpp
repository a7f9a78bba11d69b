#pragma once
// Bridges blocking work on other threads (db_pool, submitter, publisher)
// into the API's coroutines: the coroutine suspends, the callback resumes it
// on its own executor. Each callback must be called exactly once.

#include "common/db.hpp"
#include "common/log.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace jobs {

/// co_await await_callback<T>([](std::function<void(T)> done) { ...; done(value); })
template <class T, class Start>
boost::asio::awaitable<T> await_callback(Start start) {
  namespace asio = boost::asio;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [start = std::move(start)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        // Counted as outstanding work, so the io_context doesn't run out
        // (and a graceful stop doesn't return) while the callback is pending.
        auto ex = asio::prefer(asio::get_associated_executor(*h),
                               asio::execution::outstanding_work.tracked);
        start(std::function<void(T)>([h, ex](T v) {
          asio::post(ex, [h, v = std::move(v)]() mutable { std::move (*h)(std::move(v)); });
        }));
      },
      asio::use_awaitable);
}

/// await_callback, waiting at most `deadline`: nullopt when it passed first.
/// A callback called after that is ignored (it posts nothing), so `start`'s
/// work may outlive the coroutine and its io_context.
template <class T, class Start>
boost::asio::awaitable<std::optional<T>> await_callback_for(Start start,
                                                            std::chrono::milliseconds deadline) {
  namespace asio = boost::asio;
  struct shared {
    std::mutex mu;
    asio::steady_timer* timer = nullptr;  // null once the coroutine has gone
    std::optional<T> value;
  };
  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<shared>();
  asio::steady_timer timer(ex);
  timer.expires_after(deadline);
  st->timer = &timer;
  struct leave {
    std::shared_ptr<shared> st;
    ~leave() {
      std::lock_guard lk(st->mu);
      st->timer = nullptr;
    }
  } on_leave{st};
  start(std::function<void(T)>([st, ex](T v) {
    std::lock_guard lk(st->mu);
    if (!st->timer) return;  // given up on, and gone
    st->value.emplace(std::move(v));
    // The timer is touched only on the coroutine's executor.
    asio::post(ex, [st] {
      std::lock_guard lk(st->mu);
      if (st->timer) st->timer->cancel();
    });
  }));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lk(st->mu);
  co_return std::move(st->value);
}

namespace detail {
/// What db_call_for's pool task shares with its canceller: the backend fn
/// runs on, while it runs, and `abandoned` once the deadline passed. A
/// canceller holds `mu` through its request, so the pool thread starts
/// nothing else on that backend meanwhile.
struct running_call {
  std::mutex mu;
  int backend = 0;
  bool abandoned = false;
};

/// On a thread of its own, while it holds call->mu, asks PostgreSQL to
/// cancel what call->backend runs.
inline void cancel_backend(std::shared_ptr<running_call> call, std::string url,
                           std::chrono::milliseconds deadline) {
  auto cancel = [call = std::move(call), url = std::move(url), ms = deadline.count()] {
    try {
      std::lock_guard cl(call->mu);
      if (call->backend == 0) return;  // done meanwhile
      auto c = pg_connect(url);
      pqxx::nontransaction n(*c);
      n.exec_params("SELECT pg_cancel_backend($1)", call->backend);
      log_warn("database call past its deadline: cancel requested",
               {{"deadline_ms", static_cast<std::int64_t>(ms)}});
    } catch (const std::exception& e) {
      try {
        log_warn("cannot cancel a database call past its deadline", {{"error", e.what()}});
      } catch (...) {
      }
    } catch (...) {
    }
  };
  try {
    std::thread(std::move(cancel)).detach();
  } catch (const std::system_error& e) {  // no thread to be had: the call runs on
    log_warn("cannot cancel a database call past its deadline", {{"error", e.what()}});
  }
}
}  // namespace detail

/// Runs fn(pqxx::connection&) on the pool, as db_call does once (no retry),
/// but waits for it at most `deadline`, queueing for a connection included:
/// nullopt when the deadline passed first. A call still queued then never
/// runs; one running is cancelled (pg_cancel_backend of its connection's
/// backend, sent on a connection of its own from a thread of its own): a
/// statement waiting on a lock or running long ends, and its pool connection
/// serves the next call instead of holding it up. Its value or exception is
/// dropped. A server that stops answering without closing its connections
/// (frozen, or its host gone with TCP keepalives not yet failed) cannot take
/// the cancel (its connection attempt gives up after connect_timeout); the
/// caller has its nullopt at the deadline all the same.
template <class Fn>
auto db_call_for(db_pool& pool, const Fn& fn, std::chrono::milliseconds deadline)
    -> boost::asio::awaitable<std::optional<decltype(fn(std::declval<pqxx::connection&>()))>> {
  using R = decltype(fn(std::declval<pqxx::connection&>()));
  struct outcome {
    std::optional<R> value;
    std::exception_ptr error;
  };
  // The pool's task may outlive this coroutine and the io_context: it holds
  // no Asio object, and await_callback_for drops what it reports late.
  auto call = std::make_shared<detail::running_call>();
  auto start = [&pool, fn, call](std::function<void(outcome)> done) {
    pool.post([fn, call, done = std::move(done)](pqxx::connection* c) {
      {
        std::lock_guard lk(call->mu);
        if (call->abandoned) return;  // its caller has had the 503 already
        if (c) call->backend = c->backendpid();
      }
      outcome out;
      try {
        if (!c) throw pqxx::broken_connection("PostgreSQL is unreachable");
        out.value.emplace(fn(*c));
      } catch (...) {
        out.error = std::current_exception();
      }
      {
        std::lock_guard lk(call->mu);
        call->backend = 0;
      }
      done(std::move(out));
    });
  };
  auto got = co_await await_callback_for<outcome>(start, deadline);
  if (!got) {
    bool running = false;
    {
      std::lock_guard lk(call->mu);
      call->abandoned = true;
      running = call->backend != 0;
    }
    if (running) detail::cancel_backend(call, pool.url(), deadline);
    co_return std::nullopt;
  }
  if (got->error) std::rethrow_exception(got->error);
  co_return std::move(got->value);
}

/// Runs fn(pqxx::connection&) on the pool and returns its value; rethrows
/// its exception in the coroutine. No connection: throws pqxx::broken_connection.
/// A transaction PostgreSQL rolled back (deadlock, serialization failure)
/// committed nothing, so fn runs again, up to three times in all: fn must
/// open its own transactions. No answer within the pool's call_deadline()
/// (a database frozen, or its host gone before TCP keepalives fail): throws
/// pqxx::broken_connection, the request's 503, and fn is cancelled (db_call_for).
// GCC 12 destroys some temporaries of a co_await expression twice, so
// coroutines here take references and keep their callables in named locals.
/// The same with a deadline of at most `most` (a request that promises an
/// answer sooner than the pool's deadline: a key lookup, /metrics).
template <class Fn>
auto db_call(db_pool& pool, const Fn& fn, std::chrono::milliseconds most)
    -> boost::asio::awaitable<decltype(fn(std::declval<pqxx::connection&>()))> {
  auto retrying = [fn](pqxx::connection& c) {
    for (int tries = 1;; ++tries) {
      try {
        return fn(c);
      } catch (const pqxx::transaction_rollback&) {
        if (tries == 3) throw;
      }
    }
  };
  auto deadline = std::min(pool.call_deadline(), most);
  auto value = co_await db_call_for(pool, retrying, deadline);
  if (!value)
    throw pqxx::broken_connection(
        fmt::format("PostgreSQL did not answer within {} ms", deadline.count()));
  co_return std::move(*value);
}

template <class Fn>
auto db_call(db_pool& pool, const Fn& fn)
    -> boost::asio::awaitable<decltype(fn(std::declval<pqxx::connection&>()))> {
  co_return co_await db_call(pool, fn, pool.call_deadline());
}

}  // namespace jobs
