#include "common/schema.hpp"

#include "common/detail/schema_keywords.hpp"

// Without this valijson reports a bad schema by calling abort(). It changes the
// body of inline functions, so every file of a binary that includes valijson
// must agree: the build defines it for all (this only covers a build without).
#ifndef VALIJSON_USE_EXCEPTIONS
#define VALIJSON_USE_EXCEPTIONS 1
#endif
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <stdexcept>

namespace jobs {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view schema_suffix = ".schema.json";
constexpr std::string_view payload_invalid_title = "Payload does not match the job type's schema";
constexpr std::string_view additional_property_prefix =
    "Object contains a property that could not be validated using 'properties' or "
    "'additionalProperties' constraints: '";
constexpr std::string_view property_failed_prefix =
    "Failed to validate against schema associated with property name '";
constexpr std::string_view wrong_type_detail = "Value type not permitted by 'type' constraint.";
constexpr std::string_view missing_prefix = "Missing required property '";
constexpr std::string_view child_failed_prefix = "Failed to validate against child schema #";
constexpr std::string_view any_of_failed =
    "Failed to validate against any schemas allowed by anyOf constraint.";

// When `best` says a required property is missing as one branch of an
// anyOf whose every branch wanted a property (email: text or html), the
// properties of those branches (valijson reports each branch's error and
// "child schema #N", then the anyOf's, at the same place); else nothing.
std::vector<std::string_view> missing_any_of(const valijson::ValidationResults& results,
                                             const valijson::ValidationResults::Error& best) {
  std::vector<const valijson::ValidationResults::Error*> all;
  for (const auto& e : results) all.push_back(&e);
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i]->description != any_of_failed || all[i]->context != best.context) continue;
    std::vector<std::string_view> names;
    bool has_best = false;
    for (std::size_t j = i; j-- > 0;) {
      std::string_view d = all[j]->description;
      if (all[j]->context == best.context && d.starts_with(child_failed_prefix)) continue;
      if (all[j]->context != best.context || !d.starts_with(missing_prefix) || !d.ends_with("'."))
        break;
      has_best = has_best || all[j] == &best;
      names.insert(names.begin(),
                   d.substr(missing_prefix.size(), d.size() - missing_prefix.size() - 2));
    }
    if (has_best && names.size() > 1) return names;
  }
  return {};
}

json::value read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in.good() && !in.eof()) throw std::runtime_error("cannot read the file");
  json::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) throw std::runtime_error("invalid JSON: " + ec.message());
  return doc;
}

// {"if": {"type": "string", "maxLength": limit}, "then": {keyword: value},
//  "else": {"maxLength": limit}}, or without a limit just the type check.
json::value guarded(std::string_view keyword, const json::value& value,
                    std::optional<std::int64_t> limit) {
  json::object condition{{"type", "string"}};
  json::object then;
  then[keyword] = value;
  json::object guard;
  if (limit) {
    condition["maxLength"] = *limit;
    guard["else"] = json::object{{"maxLength", *limit}};
  }
  guard["if"] = std::move(condition);
  guard["then"] = std::move(then);
  return guard;
}

// Readies each schema object for valijson, children first (so the guards
// added here are never guarded again):
// - valijson runs every regex keyword on strings of any length, even after
//   `maxLength` has failed, and libstdc++'s std::regex then overflows the
//   stack; `format` (any format) throws on an array or object. So `pattern`
//   and `format` move under an if/then that reaches them only for strings
//   short enough.
// - our own keywords are checked and readied for their builders
//   (detail/schema_keywords.hpp).
void prepare(json::value& node) {
  json::object* o = node.if_object();
  if (!o) return;
  for (std::string_view key :
       {"additionalItems", "additionalProperties", "allOf", "anyOf", "contains", "else", "if",
        "items", "not", "oneOf", "propertyNames", "then"}) {
    json::value* child = o->if_contains(key);
    if (child && child->is_array()) {
      for (json::value& element : child->get_array()) prepare(element);
    } else if (child) {
      prepare(*child);
    }
  }
  for (std::string_view key : {"properties", "definitions", "$defs", "dependencies"}) {
    if (json::object* map = o->contains(key) ? o->at(key).if_object() : nullptr) {
      for (auto& member : *map) prepare(member.value());
    }
  }
  if (o->contains("patternProperties")) {
    throw std::runtime_error("patternProperties is not supported (std::regex on unbounded keys)");
  }
  detail::prepare_content_keywords(*o);

  json::array guards;
  if (const json::value* p = o->if_contains("pattern"); p && p->is_string()) {
    try {
      std::regex check(std::string(p->get_string()));
    } catch (const std::regex_error& e) {
      throw std::runtime_error(
          fmt::format("invalid pattern {}: {}", json::serialize(*p), e.what()));
    }
    std::int64_t limit = schema_registry::max_regex_input;
    if (const json::value* max = o->if_contains("maxLength"); max && max->is_int64()) {
      // A longer maxLength would be a promise the guard breaks (the string
      // refused as too long below it): say so when the schema loads.
      if (max->get_int64() > limit)
        throw std::runtime_error(fmt::format(
            "a pattern is tried on strings of at most {} characters, but maxLength is {}: "
            "lower it, or check the string another way (a format)",
            limit, max->get_int64()));
      limit = std::clamp<std::int64_t>(max->get_int64(), 0, limit);
    }
    guards.push_back(guarded("pattern", *p, limit));
    o->erase("pattern");
  }
  if (const json::value* f = o->if_contains("format"); f && f->is_string()) {
    const json::string& name = f->get_string();
    const bool regex = name == "date" || name == "time" || name == "date-time";
    guards.push_back(guarded(
        "format", *f,
        regex ? std::optional<std::int64_t>(schema_registry::max_format_input) : std::nullopt));
    o->erase("format");
  }
  if (guards.empty()) return;
  json::value& all_of = (*o)["allOf"];
  if (all_of.is_null()) all_of = json::array();
  if (!all_of.is_array()) throw std::runtime_error("allOf is not an array");
  for (json::value& g : guards) all_of.get_array().push_back(std::move(g));
}

std::unique_ptr<valijson::Schema> compile(json::value doc) {
  if (!doc.is_object()) throw std::runtime_error("a schema must be a JSON object");
  if (const json::value* version = doc.get_object().if_contains("$schema")) {
    // valijson 1.0 knows drafts 3, 4 and 7; only 7 is what we write.
    if (!version->is_string() || version->get_string().find("draft-07") == json::string::npos) {
      throw std::runtime_error("unsupported $schema " + json::serialize(*version));
    }
  }
  prepare(doc);
  auto schema = std::make_unique<valijson::Schema>();
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  detail::add_keyword_builders(parser);
  parser.populateSchema(valijson::adapters::BoostJsonAdapter(doc), *schema);
  return schema;
}

// The schema's `description` of each place in a payload, keyed by its JSON
// pointer with "*" for any array index or member name ("/to/*"): what a
// problem's detail quotes, since valijson's own words ("Failed to match
// regex ...") do not say what the field takes. Follows local $refs and the
// schema combinators; the first description found for a place wins.
using descriptions = std::map<std::string, std::string, std::less<>>;

void collect_descriptions(const json::object& root, const json::value& node,
                          const std::string& path, descriptions& out, int depth = 0) {
  if (!node.is_object() || depth > 16) return;
  const auto& o = node.get_object();
  if (const auto* d = o.if_contains("description"); d && d->is_string())
    out.emplace(path, std::string(d->get_string()));
  if (const auto* ref = o.if_contains("$ref"); ref && ref->is_string()) {
    std::string_view r = ref->get_string();
    constexpr std::string_view local = "#/definitions/";
    if (r.starts_with(local))
      if (const auto* defs = root.if_contains("definitions"); defs && defs->is_object())
        if (const auto* def = defs->get_object().if_contains(r.substr(local.size())))
          collect_descriptions(root, *def, path, out, depth + 1);
  }
  for (auto combinator : {"allOf", "anyOf", "oneOf"})
    if (const auto* all = o.if_contains(combinator); all && all->is_array())
      for (const auto& each : all->get_array())
        collect_descriptions(root, each, path, out, depth + 1);
  if (const auto* props = o.if_contains("properties"); props && props->is_object())
    for (const auto& [name, sub] : props->get_object())
      collect_descriptions(root, sub, path + "/" + json_pointer_escape(name), out, depth + 1);
  for (auto any : {"items", "additionalProperties"})
    if (const auto* sub = o.if_contains(any))
      collect_descriptions(root, *sub, path + "/*", out, depth + 1);
}

// The description of the place `pointer` (under /payload) names, or of the
// nearest place above it that has one (the payload's own only for itself);
// "*" in a described place matches any index or member name at its level
// ("/attachments/*/filename"), an exact name winning over "*" at the same
// depth.
const std::string* description_of(const descriptions& all, std::string_view pointer) {
  auto split = [](std::string_view p) {
    std::vector<std::string_view> parts;
    for (std::size_t at = 0; at < p.size();) {
      auto next = p.find('/', at + 1);
      parts.push_back(p.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
      at = next == std::string_view::npos ? p.size() : next;
    }
    return parts;
  };
  auto parts = split(pointer);
  if (!parts.empty() && parts.front() == "payload") parts.erase(parts.begin());
  // The payload itself (a member missing, two that exclude each other): the
  // job type's own description. It is never the fallback of a member's.
  if (parts.empty()) {
    auto root = all.find("");
    return root == all.end() ? nullptr : &root->second;
  }
  const std::string* best = nullptr;
  std::size_t best_depth = 0, best_wild = 0;
  for (const auto& [place, text] : all) {
    auto at = split(place);
    if (at.empty() || at.size() > parts.size() || at.size() < best_depth) continue;
    std::size_t wild = 0;
    bool match = true;
    for (std::size_t i = 0; i < at.size() && match; ++i) {
      if (at[i] == "*")
        ++wild;
      else
        match = at[i] == parts[i];
    }
    if (!match || (at.size() == best_depth && wild >= best_wild)) continue;
    best = &text;
    best_depth = at.size();
    best_wild = wild;
  }
  return best;
}

std::string_view kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64: return "integer";
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "value";
}

// valijson prints bounds with std::to_string(double): "60000.000000".
std::string trim_decimals(std::string s) {
  auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9'; };
  for (std::size_t dot = s.find('.'); dot != std::string::npos; dot = s.find('.', dot + 1)) {
    std::size_t end = dot + 1;
    while (end < s.size() && digit(end)) ++end;
    if (dot == 0 || !digit(dot - 1) || end == dot + 1) continue;
    std::size_t keep = end;
    while (s[keep - 1] == '0') --keep;
    if (keep == dot + 1) keep = dot;
    s.erase(keep, end - keep);
  }
  return s;
}

// valijson writes keys and indexes alike as "[x]"; the payload tells which.
// Advances `at` (null once off the payload) and returns the escaped token.
std::string step(const json::value*& at, std::string_view token) {
  if (at && at->is_array()) {
    std::size_t index = 0;
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
    if (ec == std::errc{} && end == token.data() + token.size() && index < at->get_array().size()) {
      at = &at->get_array()[index];
      return std::string(token);
    }
  }
  at = at && at->is_object() ? at->get_object().if_contains(token) : nullptr;
  return json_pointer_escape(token);
}

problem payload_problem(const json::value& payload, const valijson::ValidationResults& results,
                        const descriptions& described) {
  problem p{400, "payload_invalid", std::string(payload_invalid_title), "", "/payload"};
  // Errors arrive inner before outer, each failure followed by its wrappers
  // ("Failed to validate item #3"); the deepest context is the most specific.
  const valijson::ValidationResults::Error* best = nullptr;
  for (const auto& error : results) {
    if (!best || error.context.size() > best->context.size()) best = &error;
  }
  if (!best) {  // a `false` schema at the root reports nothing
    p.detail = "The schema accepts no payload.";
    return p;
  }
  const json::value* at = &payload;
  for (std::string_view token : best->context) {
    if (token.size() < 2 || token.front() != '[' || token.back() != ']') continue;  // "<root>"
    p.pointer += '/' + step(at, token.substr(1, token.size() - 2));
  }
  std::string_view d = best->description;
  if (d.starts_with(additional_property_prefix) && d.ends_with("'.")) {
    std::string_view name = d.substr(additional_property_prefix.size());
    name.remove_suffix(2);
    p.pointer += '/' + step(at, name);
    p.detail = fmt::format("Property '{}' is not allowed by the schema.", name);
  } else if (d.starts_with(property_failed_prefix) && d.ends_with("'.")) {
    // Said of the object when its member failed without a deeper error
    // (a propertyNames rule of the member's value, for one): name the member.
    std::string_view name = d.substr(property_failed_prefix.size());
    name.remove_suffix(2);
    p.pointer += '/' + step(at, name);
    p.detail = fmt::format("Property '{}' does not match its schema.", name);
  } else if (auto names = missing_any_of(results, *best); !names.empty()) {
    std::string list;
    for (std::size_t i = 0; i < names.size(); ++i)
      list += fmt::format("{}'{}'", i == 0 ? "" : i + 1 == names.size() ? " or " : ", ", names[i]);
    p.detail = fmt::format("Missing required property: at least one of {}.", list);
  } else if (d == wrong_type_detail && at) {
    p.detail = fmt::format("{} Got {}.", d, kind_name(*at));
  } else if (d.starts_with("Expected number") || d.starts_with("Value should be a multiple")) {
    p.detail = trim_decimals(std::string(d));
  } else {
    p.detail = std::string(d);
  }
  if (const auto* what = description_of(described, p.pointer)) p.detail += " Expected: " + *what;
  return p;
}

}  // namespace

std::string json_pointer_escape(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~' || c == '/') {
      out += c == '~' ? "~0" : "~1";
    } else {
      out += c;
    }
  }
  return out;
}

struct schema_registry::impl {
  struct compiled {
    std::unique_ptr<valijson::Schema> schema;
    descriptions described;
  };
  using by_type = std::map<std::string, compiled, std::less<>>;
  std::map<std::string, by_type, std::less<>> queues;

  const compiled* find(std::string_view queue, std::string_view type) const {
    auto q = queues.find(queue);
    if (q == queues.end()) return nullptr;
    auto t = q->second.find(type);
    return t == q->second.end() ? nullptr : &t->second;
  }
};

schema_registry::schema_registry(const fs::path& dir) {
  auto loaded = std::make_unique<impl>();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(fmt::format("schema directory {} not found", dir.string()));
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(schema_suffix) || !entry.is_regular_file()) continue;
    const std::string_view stem(name.data(), name.size() - schema_suffix.size());
    const std::size_t dot = stem.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == stem.size()) {
      throw std::runtime_error(
          fmt::format("{}: expected a name <queue>.<type>.schema.json", entry.path().string()));
    }
    try {
      auto doc = read_json(entry.path());
      impl::compiled c;
      if (doc.is_object()) collect_descriptions(doc.get_object(), doc, "", c.described);
      c.schema = compile(std::move(doc));
      loaded->queues[std::string(stem.substr(0, dot))][std::string(stem.substr(dot + 1))] =
          std::move(c);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", entry.path().string(), e.what()));
    }
  }
  if (loaded->queues.empty()) {
    throw std::runtime_error(
        fmt::format("schema directory {} holds no *.schema.json", dir.string()));
  }
  impl_ = std::move(loaded);
}

schema_registry::~schema_registry() = default;
schema_registry::schema_registry(schema_registry&&) noexcept = default;
schema_registry& schema_registry::operator=(schema_registry&&) noexcept = default;

bool schema_registry::has_type(std::string_view queue, std::string_view type) const {
  return impl_->find(queue, type) != nullptr;
}

std::vector<std::string> schema_registry::types(std::string_view queue) const {
  std::vector<std::string> out;
  if (auto q = impl_->queues.find(queue); q != impl_->queues.end()) {
    for (const auto& [type, schema] : q->second) out.push_back(type);
  }
  return out;  // std::map keeps them sorted
}

namespace {

// Numbers without a fraction, as integers; true when any was changed.
bool integral_doubles_as_integers(json::value& v) {
  bool changed = false;
  if (v.is_double()) {
    double d = v.get_double();
    if (std::trunc(d) == d && d >= -9.2e18 && d <= 9.2e18) {
      v = static_cast<std::int64_t>(d);
      changed = true;
    }
  } else if (auto* a = v.if_array()) {
    for (auto& e : *a) changed |= integral_doubles_as_integers(e);
  } else if (auto* o = v.if_object()) {
    for (auto& m : *o) changed |= integral_doubles_as_integers(m.value());
  }
  return changed;
}

}  // namespace

std::optional<problem> schema_registry::validate(std::string_view queue, std::string_view type,
                                                 const json::value& payload,
                                                 std::optional<json::value>* as_integers) const {
  const auto* schema = impl_->find(queue, type);
  if (!schema) {
    const std::vector<std::string> known = types(queue);
    return problem{400, "unknown_job_type", "Unknown job type",
                   known.empty() ? fmt::format("Queue '{}' has no job types.", queue)
                                 : fmt::format("Queue '{}' has no job type '{}'; known types: {}.",
                                               queue, type, fmt::join(known, ", ")),
                   "/type"};
  }
  // A Validator caches the regexes it compiles, keyed by pattern, and is not
  // safe to share: one per thread, kept, so each pattern is compiled once
  // per thread instead of at every validation (compiling the webhook URL's
  // pattern cost the API ten times the CPU of the rest of a submission).
  thread_local valijson::Validator validator;
  valijson::ValidationResults results;
  if (validator.validate(*schema->schema, valijson::adapters::BoostJsonAdapter(payload),
                         &results)) {
    return std::nullopt;
  }
  // valijson reads 5.0 as a number only: again with such numbers as integers.
  json::value copy = payload;
  if (integral_doubles_as_integers(copy) &&
      validator.validate(*schema->schema, valijson::adapters::BoostJsonAdapter(copy), nullptr)) {
    if (as_integers) *as_integers = std::move(copy);
    return std::nullopt;
  }
  return payload_problem(payload, results, schema->described);
}

}  // namespace jobs
