#pragma once
// Metrics: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format (version 0.0.4).
//
//   metrics::registry reg;
//   auto& done = reg.add_counter("jobs_completed_total", "Jobs completed", {"queue", "state"});
//   done.with({"email", "succeeded"}).inc();
//   auto& lat = reg.add_histogram("jobs_attempt_duration_seconds", "Attempt time", {"queue"},
//                             metrics::latency_buckets());
//   lat.with({"email"}).observe(0.012);
//   reg.add_collector([&] { pool_gauge.with({"reads"}).set(pool.in_use()); });
//   std::string text = reg.render();
//
// Hot path: inc/set/observe are lock-free atomics. `with(labels)` looks the
// child up under a shared lock (an exclusive one only the first time a label
// set is seen); callers on very hot paths keep the returned reference, which
// stays valid for the registry's lifetime.
//
// Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
// (not "le" on histograms); a bad name, a name registered twice, or `with`
// given the wrong number of values throws std::invalid_argument.
// Collectors run at the start of render() (on the scraping thread) to refresh
// gauges whose value lives elsewhere (pool sizes, queue depths); one that
// throws is skipped for that scrape.
//
// Thread-safety: everything may be called from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::metrics {

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class histogram {
 public:
  /// `bounds`: strictly increasing upper bounds, without +Inf.
  explicit histogram(const std::vector<double>& bounds);
  void observe(double v) noexcept;
  /// Cumulative counts per bound, then the +Inf count (== count()).
  std::vector<std::uint64_t> cumulative() const;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative; +Inf last
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

/// 0.5 ms to 10 s: request, confirm and short job latencies in seconds.
std::vector<double> latency_buckets();
/// 5 ms to 10 min: job attempt durations in seconds.
std::vector<double> duration_buckets();

class family_base {
 public:
  family_base(std::string name, std::string help, std::vector<std::string> label_names);
  virtual ~family_base() = default;
  virtual void render(std::string& out) const = 0;
  const std::string& name() const { return name_; }

 protected:
  void check_arity(std::size_t n) const;
  void header(std::string& out, std::string_view type) const;
  /// `{a="x",b="y"` plus `extra` (already formatted) and `}`; "" without labels.
  void label_text(std::string& out, const std::vector<std::string>& values,
                  std::string_view extra = {}) const;

  std::string name_, help_;
  std::vector<std::string> label_names_;
};

template <class T>
class family final : public family_base {
 public:
  family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : family_base(std::move(name), std::move(help), std::move(label_names)),
        make_(std::move(make)) {}

  T& with(std::initializer_list<std::string_view> values) {
    return with(std::vector<std::string>(values.begin(), values.end()));
  }
  T& with(const std::vector<std::string>& values) {
    check_arity(values.size());
    {
      std::shared_lock lk(mu_);
      if (auto it = children_.find(values); it != children_.end()) return *it->second;
    }
    std::unique_lock lk(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  void render(std::string& out) const override;

 private:
  std::function<std::unique_ptr<T>()> make_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

template <>
void family<counter>::render(std::string& out) const;
template <>
void family<gauge>::render(std::string& out) const;
template <>
void family<histogram>::render(std::string& out) const;

class registry {
 public:
  family<counter>& add_counter(std::string name, std::string help,
                               std::vector<std::string> label_names = {});
  family<gauge>& add_gauge(std::string name, std::string help,
                           std::vector<std::string> label_names = {});
  family<histogram>& add_histogram(std::string name, std::string help,
                                   std::vector<std::string> label_names,
                                   std::vector<double> bounds);
  void add_collector(std::function<void()> fn);
  /// The text exposition of every family, in registration order.
  std::string render() const;
  /// The registered metric names (without _bucket/_sum/_count suffixes).
  std::vector<std::string> names() const;

 private:
  template <class F>
  F& add(std::unique_ptr<F> f);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<family_base>> families_;
  std::vector<std::function<void()>> collectors_;
};

/// The Content-Type of render()'s output.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace jobs::metrics
