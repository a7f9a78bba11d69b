#include "workers/processing/detail/csv.hpp"
#include "workers/processing/processing.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace jobs::processing {
namespace {

using detail::csv_reader;
using detail::is_blank;
using detail::parse_number;

enum class op { count, sum, min, max, avg };

constexpr std::size_t npos = static_cast<std::size_t>(-1);

struct aggregate_spec {
  op what = op::count;
  std::optional<std::string> column_name;
  std::size_t column = npos;  // index in the header once resolved
  std::string output;
};

struct request {
  std::string_view csv;
  char delimiter = ',';
  std::vector<std::string> group_by;
  std::vector<aggregate_spec> aggregates;
};

struct accumulator {
  std::int64_t count = 0;  // rows, non-blank cells or numeric values, by op
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

struct group {
  std::vector<std::string> keys;
  std::vector<accumulator> accs;
};

handler_error bad(std::string m) { return handler_error::permanent(std::move(m)); }

std::string quoted(std::string_view s) {
  constexpr std::size_t max_shown = 40;
  if (s.size() > max_shown) return "\"" + std::string(s.substr(0, max_shown)) + "...\"";
  return "\"" + std::string(s) + "\"";
}

std::optional<op> parse_op(std::string_view s) {
  if (s == "count") return op::count;
  if (s == "sum") return op::sum;
  if (s == "min") return op::min;
  if (s == "max") return op::max;
  if (s == "avg") return op::avg;
  return std::nullopt;
}

std::variant<aggregate_spec, handler_error> parse_aggregate(const boost::json::value& a) {
  const auto* o = a.if_object();
  const auto* op_v = o ? o->if_contains("op") : nullptr;
  const auto what = op_v && op_v->is_string() ? parse_op(op_v->get_string()) : std::nullopt;
  if (!what) return bad("each aggregate needs an op: count, sum, min, max or avg");
  const std::string op_name(op_v->get_string());
  aggregate_spec spec{*what, std::nullopt, npos, {}};
  if (const auto* c = o->if_contains("column")) {
    if (!c->is_string()) return bad("an aggregate's column must be a string");
    spec.column_name.emplace(c->get_string());
  } else if (*what != op::count) {
    return bad(op_name + " needs a column");
  }
  if (const auto* as = o->if_contains("as")) {
    if (!as->is_string() || as->get_string().empty()) return bad("as must be a non-empty string");
    spec.output = as->get_string();
  } else {
    spec.output = spec.column_name ? op_name + "_" + *spec.column_name : op_name;
  }
  return spec;
}

std::variant<request, handler_error> parse_request(const boost::json::value& payload) {
  const auto* p = payload.if_object();
  if (!p) return bad("payload must be a JSON object");
  request r;

  const auto* csv = p->if_contains("csv");
  if (!csv || !csv->is_string()) return bad("csv must be a string");
  r.csv = csv->get_string();
  if (r.csv.size() > csv_limits::max_csv_bytes) {
    return bad("csv is larger than " + std::to_string(csv_limits::max_csv_bytes) + " bytes");
  }

  if (const auto* d = p->if_contains("delimiter")) {
    const auto* s = d->if_string();
    const char c = s && s->size() == 1 ? (*s)[0] : '"';
    if (c == '"' || (c != '\t' && (c < ' ' || c > '~'))) {
      return bad("delimiter must be a tab or one printable ASCII character other than '\"'");
    }
    r.delimiter = c;
  }

  if (const auto* g = p->if_contains("group_by")) {
    const auto* arr = g->if_array();
    if (!arr || arr->size() > csv_limits::max_group_by) {
      return bad("group_by must be an array of at most " +
                 std::to_string(csv_limits::max_group_by) + " column names");
    }
    for (const auto& name : *arr) {
      if (!name.is_string()) return bad("group_by must be an array of column names");
      r.group_by.emplace_back(name.get_string());
    }
  }

  const auto* aggs_v = p->if_contains("aggregates");
  const auto* aggs = aggs_v ? aggs_v->if_array() : nullptr;
  if (!aggs || aggs->empty() || aggs->size() > csv_limits::max_aggregates) {
    return bad("aggregates must be an array of 1 to " + std::to_string(csv_limits::max_aggregates) +
               " objects");
  }
  for (const auto& a : *aggs) {
    auto spec = parse_aggregate(a);
    if (auto* e = std::get_if<handler_error>(&spec)) return std::move(*e);
    r.aggregates.push_back(std::move(std::get<aggregate_spec>(spec)));
  }

  std::unordered_set<std::string_view> outputs;
  for (const auto& name : r.group_by) {
    if (!outputs.insert(name).second) return bad("group_by names " + quoted(name) + " twice");
  }
  for (const auto& s : r.aggregates) {
    if (!outputs.insert(s.output).second) {
      return bad("two outputs are named " + quoted(s.output) + "; use \"as\" to rename one");
    }
  }
  return r;
}

boost::json::value number(double d) {
  constexpr double exact_limit = 9007199254740992.0;  // 2^53
  if (std::trunc(d) == d && std::fabs(d) <= exact_limit) return static_cast<std::int64_t>(d);
  return d;
}

// Length-prefixed so that no two distinct key tuples give the same string.
void append_key(std::string& key, std::string_view part) {
  const auto n = static_cast<std::uint32_t>(part.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(part);
}

std::variant<std::size_t, handler_error> column_index(const std::vector<std::string>& header,
                                                      const std::string& name) {
  std::size_t found = npos;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] != name) continue;
    if (found != npos) return bad("column " + quoted(name) + " appears twice in the header");
    found = i;
  }
  if (found == npos) return bad("unknown column " + quoted(name));
  return found;
}

}  // namespace

handler_result csv_aggregate_handler(const job_context& ctx) {
  auto parsed = parse_request(ctx.payload);
  if (auto* e = std::get_if<handler_error>(&parsed)) return std::move(*e);
  auto& req = std::get<request>(parsed);

  csv_reader reader(req.csv, req.delimiter, csv_limits::max_columns);
  std::vector<std::string> header;
  if (reader.next(header) != csv_reader::status::record) {
    return bad(reader.error_message().empty() ? "csv has no header row"
                                              : "csv: " + reader.error_message());
  }
  std::vector<std::size_t> group_cols;
  for (const auto& name : req.group_by) {
    auto idx = column_index(header, name);
    if (auto* e = std::get_if<handler_error>(&idx)) return std::move(*e);
    group_cols.push_back(std::get<std::size_t>(idx));
  }
  for (auto& s : req.aggregates) {
    if (!s.column_name) continue;
    auto idx = column_index(header, *s.column_name);
    if (auto* e = std::get_if<handler_error>(&idx)) return std::move(*e);
    s.column = std::get<std::size_t>(idx);
  }

  const auto& specs = req.aggregates;
  std::vector<group> groups;
  std::unordered_map<std::string, std::size_t> group_of_key;
  if (group_cols.empty()) groups.push_back({{}, std::vector<accumulator>(specs.size())});

  std::vector<std::string> fields;
  std::string key;
  std::int64_t row = 0;
  auto where = [&] {
    return "row " + std::to_string(row) + " (line " + std::to_string(reader.line()) + ")";
  };
  for (;;) {
    const auto st = reader.next(fields);
    if (st == csv_reader::status::end) break;
    if (st == csv_reader::status::error) return bad("csv: " + reader.error_message());
    ++row;
    if (fields.size() != header.size()) {
      return bad(where() + " has " + std::to_string(fields.size()) + " fields; the header has " +
                 std::to_string(header.size()));
    }

    group* g = groups.empty() ? nullptr : &groups.front();
    if (!group_cols.empty()) {
      key.clear();
      for (auto c : group_cols) append_key(key, fields[c]);
      const auto [it, inserted] = group_of_key.try_emplace(key, groups.size());
      if (inserted) {
        if (groups.size() == csv_limits::max_groups) {
          return bad("more than " + std::to_string(csv_limits::max_groups) + " groups");
        }
        group fresh{{}, std::vector<accumulator>(specs.size())};
        for (auto c : group_cols) fresh.keys.push_back(fields[c]);
        groups.push_back(std::move(fresh));
      }
      g = &groups[it->second];
    }

    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto& s = specs[i];
      auto& acc = g->accs[i];
      if (s.column == npos) {
        ++acc.count;
        continue;
      }
      const std::string& cell = fields[s.column];
      if (is_blank(cell)) continue;
      if (s.what != op::count) {
        const auto v = parse_number(cell);
        if (!v) {
          return bad(where() + ", column " + quoted(*s.column_name) + ": " + quoted(cell) +
                     " is not a number");
        }
        acc.sum += *v;
        acc.min = std::min(acc.min, *v);
        acc.max = std::max(acc.max, *v);
      }
      ++acc.count;
    }
  }

  boost::json::array rows;
  rows.reserve(groups.size());
  for (const auto& g : groups) {
    boost::json::object out;
    for (std::size_t i = 0; i < req.group_by.size(); ++i) out[req.group_by[i]] = g.keys[i];
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto& acc = g.accs[i];
      boost::json::value v;  // null unless set below
      if (specs[i].what == op::count) {
        v = acc.count;
      } else if (specs[i].what == op::sum) {
        v = number(acc.sum);
      } else if (acc.count > 0) {
        const double avg = acc.sum / static_cast<double>(acc.count);
        v = number(specs[i].what == op::min ? acc.min : specs[i].what == op::max ? acc.max : avg);
      }
      // Finite values can still sum to infinity, which JSON cannot hold.
      if (v.is_double() && !std::isfinite(v.get_double())) {
        return bad(specs[i].output + " overflows a double");
      }
      out[specs[i].output] = std::move(v);
    }
    rows.push_back(std::move(out));
  }

  boost::json::object result;
  result["rows"] = std::move(rows);
  result["row_count"] = row;
  result["group_count"] = static_cast<std::int64_t>(groups.size());
  return boost::json::value(std::move(result));
}

}  // namespace jobs::processing
