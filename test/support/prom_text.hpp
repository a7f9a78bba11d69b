#pragma once
// A strict parser of the Prometheus text exposition format (0.0.4), for
// tests: every line is blank, a comment, or `name{labels} value`; a family's
// HELP/TYPE come before its samples; a family's samples are contiguous;
// histograms have le buckets that are cumulative, end in +Inf, and +Inf ==
// _count. Any violation throws std::runtime_error naming the line.

#include <map>
#include <string>
#include <vector>

namespace jobs::test {

struct prom_sample {
  std::string name;  ///< as written (with _bucket/_sum/_count)
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct prom_family {
  std::string type;  ///< counter, gauge, histogram, summary, untyped
  std::string help;
  std::vector<prom_sample> samples;
};

using prom_families = std::map<std::string, prom_family>;

prom_families parse_prom_text(const std::string& text);

/// The sum of `name`'s samples (any family) whose labels include `match`.
double prom_sum(const prom_families& f, const std::string& name,
                const std::map<std::string, std::string>& match = {});

}  // namespace jobs::test
