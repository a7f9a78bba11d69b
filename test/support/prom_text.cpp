#include "support/prom_text.hpp"

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

namespace jobs::test {

namespace {

[[noreturn]] void bad(int line, const std::string& why, const std::string& text) {
  throw std::runtime_error("line " + std::to_string(line) + ": " + why + ": " + text);
}

bool name_char(char c, bool first, bool colons) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':') ||
         (!first && c >= '0' && c <= '9');
}

std::size_t read_name(const std::string& s, std::size_t i, bool colons) {
  std::size_t j = i;
  while (j < s.size() && name_char(s[j], j == i, colons)) ++j;
  return j;
}

double parse_value(const std::string& v, int line, const std::string& text) {
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  std::size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (...) {
    bad(line, "bad value", text);
  }
  if (used != v.size()) bad(line, "bad value", text);
  return d;
}

// The family a sample belongs to: histograms own name_bucket/_sum/_count.
std::string family_of(const std::string& name, const prom_families& f) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      auto base = name.substr(0, name.size() - s.size());
      auto it = f.find(base);
      if (it != f.end() && (it->second.type == "histogram" || it->second.type == "summary"))
        return base;
    }
  }
  return name;
}

void check_histogram(const std::string& name, const prom_family& fam) {
  // Group by the labels other than le.
  std::map<std::map<std::string, std::string>, std::vector<const prom_sample*>> series;
  std::map<std::map<std::string, std::string>, double> counts;
  for (const auto& s : fam.samples) {
    auto labels = s.labels;
    if (s.name == name + "_bucket") {
      if (!labels.contains("le")) throw std::runtime_error(name + ": bucket without le");
      labels.erase("le");
      series[labels].push_back(&s);
    } else if (s.name == name + "_count") {
      counts[labels] = s.value;
    } else if (s.name != name + "_sum") {
      throw std::runtime_error(name + ": unexpected sample " + s.name);
    }
  }
  if (series.size() != counts.size()) throw std::runtime_error(name + ": buckets without _count");
  for (const auto& [labels, buckets] : series) {
    double prev_le = -INFINITY, prev = 0;
    for (const auto* b : buckets) {
      double le = parse_value(b->labels.at("le"), 0, name);
      if (!(le > prev_le)) throw std::runtime_error(name + ": le not increasing");
      if (b->value < prev) throw std::runtime_error(name + ": buckets not cumulative");
      prev_le = le;
      prev = b->value;
    }
    if (!std::isinf(prev_le)) throw std::runtime_error(name + ": no +Inf bucket");
    if (!counts.contains(labels) || counts.at(labels) != prev)
      throw std::runtime_error(name + ": +Inf bucket != _count");
  }
}

}  // namespace

prom_families parse_prom_text(const std::string& text) {
  prom_families out;
  std::set<std::string> closed;  // families whose samples ended
  std::string current;           // family of the previous sample
  std::istringstream in(text);
  std::string l;
  int n = 0;
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("no final newline");
  while (std::getline(in, l)) {
    ++n;
    if (l.empty()) continue;
    if (l[0] == '#') {
      std::istringstream c(l.substr(1));
      std::string kind, name;
      c >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // a plain comment
      if (read_name(name, 0, true) != name.size() || name.empty()) bad(n, "bad name", l);
      auto& fam = out[name];
      if (!fam.samples.empty()) bad(n, kind + " after samples", l);
      std::string rest;
      std::getline(c, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kind == "TYPE") {
        static const std::set<std::string> types{"counter", "gauge", "histogram", "summary",
                                                 "untyped"};
        if (!fam.type.empty()) bad(n, "second TYPE", l);
        if (!types.contains(rest)) bad(n, "unknown type", l);
        fam.type = rest;
      } else {
        if (!fam.help.empty()) bad(n, "second HELP", l);
        fam.help = rest.empty() ? " " : rest;
      }
      continue;
    }
    prom_sample s;
    std::size_t i = read_name(l, 0, true);
    if (i == 0) bad(n, "no metric name", l);
    s.name = l.substr(0, i);
    if (i < l.size() && l[i] == '{') {
      ++i;
      while (i < l.size() && l[i] != '}') {
        auto j = read_name(l, i, false);
        if (j == i || j >= l.size() || l[j] != '=' || j + 1 >= l.size() || l[j + 1] != '"')
          bad(n, "bad label", l);
        auto label = l.substr(i, j - i);
        std::string value;
        std::size_t k = j + 2;
        for (; k < l.size() && l[k] != '"'; ++k) {
          if (l[k] == '\\') {
            if (++k >= l.size()) bad(n, "bad escape", l);
            if (l[k] == 'n')
              value.push_back('\n');
            else if (l[k] == '\\' || l[k] == '"')
              value.push_back(l[k]);
            else
              bad(n, "bad escape", l);
          } else {
            value.push_back(l[k]);
          }
        }
        if (k >= l.size()) bad(n, "unterminated label value", l);
        if (!s.labels.emplace(label, value).second) bad(n, "label repeated", l);
        i = k + 1;
        if (i < l.size() && l[i] == ',') ++i;
      }
      if (i >= l.size()) bad(n, "unterminated labels", l);
      ++i;
    }
    if (i >= l.size() || l[i] != ' ') bad(n, "no space before the value", l);
    auto rest = l.substr(i + 1);
    auto sp = rest.find(' ');  // an optional timestamp follows
    s.value = parse_value(rest.substr(0, sp), n, l);
    if (sp != std::string::npos) {
      auto ts = rest.substr(sp + 1);
      if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string::npos)
        bad(n, "bad timestamp", l);
    }
    auto fam_name = family_of(s.name, out);
    auto it = out.find(fam_name);
    if (it == out.end() || it->second.type.empty()) bad(n, "sample before its TYPE", l);
    if (fam_name != current) {
      if (closed.contains(fam_name)) bad(n, "family's samples not together", l);
      if (!current.empty()) closed.insert(current);
      current = fam_name;
    }
    it->second.samples.push_back(std::move(s));
  }
  for (const auto& [name, fam] : out)
    if (fam.type == "histogram") check_histogram(name, fam);
  return out;
}

double prom_sum(const prom_families& f, const std::string& name,
                const std::map<std::string, std::string>& match) {
  double total = 0;
  for (const auto& [fname, fam] : f)
    for (const auto& s : fam.samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : match)
        if (!s.labels.contains(k) || s.labels.at(k) != v) ok = false;
      if (ok) total += s.value;
    }
  return total;
}

}  // namespace jobs::test
