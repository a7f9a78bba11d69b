#include "common/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace jobs::metrics {

namespace {

bool valid_name(std::string_view s, bool colons) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colons && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Sample values: integers without a fraction, others in their shortest exact
// form; the special values as the format spells them.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);
}

// HELP text escapes backslash and newline; label values also the double quote.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out.push_back(c);
  }
}

}  // namespace

histogram::histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i + 1 < bounds_.size(); ++i)
    if (!(bounds_[i] < bounds_[i + 1]))
      throw std::invalid_argument("histogram bounds must increase strictly");
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void histogram::observe(double v) noexcept {
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                    bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::uint64_t> histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> duration_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

family_base::family_base(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {
  if (!valid_name(name_, true)) throw std::invalid_argument("bad metric name: " + name_);
  for (const auto& l : label_names_)
    if (!valid_name(l, false) || l.starts_with("__"))
      throw std::invalid_argument("bad label name: " + l);
}

void family_base::check_arity(std::size_t n) const {
  if (n != label_names_.size())
    throw std::invalid_argument(
        fmt::format("{} takes {} label values, not {}", name_, label_names_.size(), n));
}

void family_base::header(std::string& out, std::string_view type) const {
  out += "# HELP ";
  out += name_;
  out.push_back(' ');
  append_escaped(out, help_, false);
  out += "\n# TYPE ";
  out += name_;
  out.push_back(' ');
  out += type;
  out.push_back('\n');
}

void family_base::label_text(std::string& out, const std::vector<std::string>& values,
                             std::string_view extra) const {
  if (values.empty() && extra.empty()) return;
  out.push_back('{');
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    out += label_names_[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out.push_back('"');
  }
  if (!extra.empty()) {
    if (!values.empty()) out.push_back(',');
    out += extra;
  }
  out.push_back('}');
}

template <>
void family<counter>::render(std::string& out) const {
  header(out, "counter");
  std::shared_lock lk(mu_);
  for (const auto& [values, c] : children_) {
    out += name_;
    label_text(out, values);
    out += fmt::format(" {}\n", c->value());
  }
}

template <>
void family<gauge>::render(std::string& out) const {
  header(out, "gauge");
  std::shared_lock lk(mu_);
  for (const auto& [values, g] : children_) {
    out += name_;
    label_text(out, values);
    out.push_back(' ');
    out += format_value(g->value());
    out.push_back('\n');
  }
}

template <>
void family<histogram>::render(std::string& out) const {
  header(out, "histogram");
  std::shared_lock lk(mu_);
  for (const auto& [values, h] : children_) {
    // Read the buckets first: +Inf is their total, so the series stays
    // consistent even while observations land.
    auto cum = h->cumulative();
    for (std::size_t i = 0; i < cum.size(); ++i) {
      auto le = i < h->bounds().size() ? format_value(h->bounds()[i]) : "+Inf";
      out += name_;
      out += "_bucket";
      label_text(out, values, "le=\"" + le + "\"");
      out += fmt::format(" {}\n", cum[i]);
    }
    out += name_;
    out += "_sum";
    label_text(out, values);
    out.push_back(' ');
    out += format_value(h->sum());
    out.push_back('\n');
    out += name_;
    out += "_count";
    label_text(out, values);
    out += fmt::format(" {}\n", cum.back());
  }
}

template <class F>
F& registry::add(std::unique_ptr<F> f) {
  std::lock_guard lk(mu_);
  for (const auto& g : families_)
    if (g->name() == f->name())
      throw std::invalid_argument("metric registered twice: " + f->name());
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

family<counter>& registry::add_counter(std::string name, std::string help,
                                       std::vector<std::string> label_names) {
  return add(std::make_unique<family<metrics::counter>>(
      std::move(name), std::move(help), std::move(label_names),
      [] { return std::make_unique<metrics::counter>(); }));
}

family<gauge>& registry::add_gauge(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
  return add(std::make_unique<family<metrics::gauge>>(
      std::move(name), std::move(help), std::move(label_names),
      [] { return std::make_unique<metrics::gauge>(); }));
}

family<histogram>& registry::add_histogram(std::string name, std::string help,
                                           std::vector<std::string> label_names,
                                           std::vector<double> bounds) {
  for (const auto& l : label_names)
    if (l == "le") throw std::invalid_argument("a histogram cannot have a label named le");
  metrics::histogram probe(bounds);  // validates the bounds now, not at the first with()
  return add(std::make_unique<family<metrics::histogram>>(
      std::move(name), std::move(help), std::move(label_names),
      [b = std::move(bounds)] { return std::make_unique<metrics::histogram>(b); }));
}

void registry::add_collector(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  collectors_.push_back(std::move(fn));
}

std::string registry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lk(mu_);
    collectors = collectors_;
  }
  for (const auto& c : collectors) {
    try {
      c();
    } catch (...) {
      // A source that is down (PostgreSQL, say) leaves its gauges as they were.
    }
  }
  std::string out;
  std::lock_guard lk(mu_);
  for (const auto& f : families_) f->render(out);
  return out;
}

std::vector<std::string> registry::names() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& f : families_) out.push_back(f->name());
  return out;
}

}  // namespace jobs::metrics
