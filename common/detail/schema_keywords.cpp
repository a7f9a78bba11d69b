#include "common/detail/schema_keywords.hpp"

#include "common/base64.hpp"
#include "common/text.hpp"
#include "common/webhook_url.hpp"

// As in common/schema.cpp: every file of a binary that includes valijson must
// agree on this (the build defines it for all).
#ifndef VALIJSON_USE_EXCEPTIONS
#define VALIJSON_USE_EXCEPTIONS 1
#endif
#include <valijson/constraint_builder.hpp>
#include <valijson/constraints/concrete_constraints.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace jobs::detail {
namespace {

namespace json = boost::json;
using valijson::ValidationResults;
using valijson::adapters::Adapter;
using valijson::constraints::Constraint;
using valijson::constraints::PolyConstraint;

constexpr std::string_view padding_keyword = "x-base64-padding";
// What prepare_content_keywords() makes of contentEncoding "base64" beside
// "x-base64-padding": "optional", since a builder sees only its own keyword.
// A schema cannot say it: contentEncoding is checked to be "base64" first.
constexpr std::string_view base64_padding_optional = "base64 (x-base64-padding: optional)";
constexpr std::string_view webhook_url_format = "webhook-url";
// A header field's value (RFC 9110 5.5): no control character but tab. A
// check in code, not a `pattern`: std::regex is tried only on short strings.
constexpr std::string_view field_value_format = "http-field-value";
// The formats draft-07 defines (section 7.3); valijson checks the first three.
constexpr std::array<std::string_view, 17> draft7_formats{
    "date",          "time",         "date-time",     "email",
    "idn-email",     "hostname",     "idn-hostname",  "ipv4",
    "ipv6",          "uri",          "uri-reference", "iri",
    "iri-reference", "uri-template", "json-pointer",  "relative-json-pointer",
    "regex"};

// A string check that valijson calls for each value the keyword applies to.
// `check` returns nothing when the string is good, else what is wrong.
template <typename Check>
class string_constraint final : public PolyConstraint {
 public:
  explicit string_constraint(Check check) : check_(std::move(check)) {}

  bool validate(const Adapter& target, const std::vector<std::string>& context,
                ValidationResults* results) const override {
    if (!target.isString()) return true;
    std::string why = check_(target.getString());
    if (why.empty()) return true;
    if (results) results->pushError(context, why);
    return false;
  }

 private:
  Constraint* cloneInto(void* at) const override { return new (at) string_constraint(*this); }
  std::size_t sizeOf() const override { return sizeof(string_constraint); }

  Check check_;
};

template <typename Check>
Constraint* make_string_constraint(Check check) {
  return new string_constraint<Check>(std::move(check));
}

std::string keyword_text(const Adapter& value) {
  return value.isString() ? fmt::format("\"{}\"", value.getString()) : "(not a string)";
}

class content_encoding_builder final : public valijson::ConstraintBuilder {
 public:
  Constraint* make(const Adapter& value) const override {
    const std::string name = value.isString() ? value.getString() : std::string();
    if (name != "base64" && name != base64_padding_optional)
      throw std::runtime_error(fmt::format("contentEncoding {} is not checked: only \"base64\" is",
                                           keyword_text(value)));
    const auto padding = name == "base64" ? base64_padding::required : base64_padding::optional;
    return make_string_constraint([padding](std::string_view s) {
      std::string why;
      if (is_base64(s, padding, &why)) return std::string();
      return fmt::format("String is not standard{} base64: {}.",
                         padding == base64_padding::required ? ", padded" : "", why);
    });
  }
};

class format_builder final : public valijson::ConstraintBuilder {
 public:
  Constraint* make(const Adapter& value) const override {
    const std::string name = value.isString() ? value.getString() : std::string();
    if (name == webhook_url_format) {
      return make_string_constraint([](std::string_view s) {
        auto parsed = parse_webhook_url(s);
        const auto* why = std::get_if<std::string>(&parsed);
        return why ? *why + "." : std::string();
      });
    }
    if (name == field_value_format) {
      return make_string_constraint([](std::string_view s) {
        return is_field_value(s) ? std::string()
                                 : std::string(
                                       "String holds a control character (only tab is allowed in "
                                       "a header value).");
      });
    }
    if (std::find(draft7_formats.begin(), draft7_formats.end(), name) == draft7_formats.end())
      throw std::runtime_error(fmt::format("unknown format {}", keyword_text(value)));
    // valijson's own FormatConstraint checks (or takes) the standard ones.
    return make_string_constraint([](std::string_view) { return std::string(); });
  }
};

// A keyword's value {"<names_key>": [strings, at least one], "<count_key>":
// an integer} and nothing else: false when it is not.
bool names_and_count(const Adapter& value, std::string_view names_key,
                     std::vector<std::string>& names, std::string_view count_key,
                     std::int64_t& count) {
  bool ok = value.isObject();
  if (ok)
    value.applyToObject([&](const std::string& name, const Adapter& member) {
      if (name == names_key && member.isArray()) {
        member.applyToArray([&](const Adapter& item) {
          if (item.isString())
            names.push_back(item.getString());
          else
            ok = false;
          return true;
        });
      } else if (name == count_key && member.isInteger()) {
        count = member.getInteger();
      } else {
        ok = false;
      }
      return true;
    });
  return ok && !names.empty();
}

// x-max-total-items: the members named hold at most `maximum` array items
// together, as a worker that counts them all (email: to + cc + bcc) would.
class total_items_constraint final : public PolyConstraint {
 public:
  total_items_constraint(std::vector<std::string> of, std::int64_t maximum)
      : of_(std::move(of)), maximum_(maximum) {}

  bool validate(const Adapter& target, const std::vector<std::string>& context,
                ValidationResults* results) const override {
    if (!target.isObject()) return true;
    std::size_t total = 0;
    std::string last;  // the last member named that has items, in `of`'s order
    target.applyToObject([&](const std::string& name, const Adapter& value) {
      std::size_t n = 0;
      if (std::find(of_.begin(), of_.end(), name) != of_.end() && value.getArraySize(n) && n > 0) {
        total += n;
        if (last.empty() ||
            std::find(of_.begin(), of_.end(), name) > std::find(of_.begin(), of_.end(), last))
          last = name;
      }
      return true;
    });
    if (total <= static_cast<std::size_t>(maximum_)) return true;
    if (results) {
      auto at = context;
      at.push_back("[" + last + "]");
      results->pushError(at, fmt::format("{} hold {} items together; at most {}.",
                                         fmt::join(of_, ", "), total, maximum_));
    }
    return false;
  }

 private:
  Constraint* cloneInto(void* at) const override { return new (at) total_items_constraint(*this); }
  std::size_t sizeOf() const override { return sizeof(total_items_constraint); }

  std::vector<std::string> of_;
  std::int64_t maximum_;
};

class total_items_builder final : public valijson::ConstraintBuilder {
 public:
  Constraint* make(const Adapter& value) const override {
    std::vector<std::string> of;
    std::int64_t maximum = -1;
    if (!names_and_count(value, "of", of, "maximum", maximum) || maximum < 0)
      throw std::runtime_error(
          "x-max-total-items must be {\"of\": [member names], \"maximum\": a count}");
    return new total_items_constraint(std::move(of), maximum);
  }
};

// x-structured-fields: the members named (in any case, as header names
// compare) are printable ASCII without a run of more than `max_word`
// characters but spaces; such a value folds at its spaces into lines a
// relay takes, and needs no encoded-word (which a structured header field
// may not hold).
class structured_fields_constraint final : public PolyConstraint {
 public:
  structured_fields_constraint(std::vector<std::string> names, std::int64_t max_word)
      : names_(std::move(names)), max_word_(max_word) {}

  bool validate(const Adapter& target, const std::vector<std::string>& context,
                ValidationResults* results) const override {
    if (!target.isObject()) return true;
    bool ok = true;
    target.applyToObject([&](const std::string& name, const Adapter& value) {
      if (!value.isString() || std::none_of(names_.begin(), names_.end(),
                                            [&](const auto& n) { return ascii_iequals(n, name); }))
        return true;
      auto text = value.getString();
      std::int64_t run = 0;
      bool good = std::all_of(text.begin(), text.end(), [&](char c) {
        run = c == ' ' ? 0 : run + 1;
        return c >= 0x20 && c < 0x7f && run <= max_word_;
      });
      if (good) return true;
      ok = false;
      if (results) {
        auto at = context;
        at.push_back("[" + name + "]");
        results->pushError(
            at, fmt::format("{} is a structured field: printable ASCII, and no word (a run "
                            "without a space) over {} characters, so that it folds into lines "
                            "of 998 with no encoded-word.",
                            name, max_word_));
      }
      return true;
    });
    return ok;
  }

 private:
  static bool ascii_iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
             return lower(x) == lower(y);
           });
  }
  Constraint* cloneInto(void* at) const override {
    return new (at) structured_fields_constraint(*this);
  }
  std::size_t sizeOf() const override { return sizeof(structured_fields_constraint); }

  std::vector<std::string> names_;
  std::int64_t max_word_;
};

class structured_fields_builder final : public valijson::ConstraintBuilder {
 public:
  Constraint* make(const Adapter& value) const override {
    std::vector<std::string> names;
    std::int64_t max_word = -1;
    if (!names_and_count(value, "names", names, "maxWord", max_word) || max_word < 1)
      throw std::runtime_error(
          "x-structured-fields must be {\"names\": [member names], \"maxWord\": a length}");
    return new structured_fields_constraint(std::move(names), max_word);
  }
};

// x-case-insensitive-names: true: no two member names that differ only in
// ASCII case (header names: "X-Foo" and "x-foo" are one field twice). The
// error is at the object, naming the second.
class case_insensitive_names_constraint final : public PolyConstraint {
 public:
  bool validate(const Adapter& target, const std::vector<std::string>& context,
                ValidationResults* results) const override {
    if (!target.isObject()) return true;
    std::vector<std::string> seen;
    bool ok = true;
    target.applyToObject([&](const std::string& name, const Adapter&) {
      auto lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
      if (std::find(seen.begin(), seen.end(), lower) == seen.end()) {
        seen.push_back(std::move(lower));
        return true;
      }
      ok = false;
      // At the object: its names are what is wrong, and its description
      // (not the member's) says what it takes.
      if (results)
        results->pushError(context,
                           fmt::format("{} is given twice: names are case-insensitive.", name));
      return true;
    });
    return ok;
  }

 private:
  Constraint* cloneInto(void* at) const override {
    return new (at) case_insensitive_names_constraint(*this);
  }
  std::size_t sizeOf() const override { return sizeof(case_insensitive_names_constraint); }
};

class case_insensitive_names_builder final : public valijson::ConstraintBuilder {
 public:
  Constraint* make(const Adapter& value) const override {
    bool on = false;
    if (!value.maybeBool() || !value.asBool(on) || !on)
      throw std::runtime_error("x-case-insensitive-names must be true");
    return new case_insensitive_names_constraint();
  }
};

}  // namespace

void prepare_content_keywords(json::object& schema) {
  json::value* encoding = schema.if_contains("contentEncoding");
  if (encoding && !(encoding->is_string() && encoding->get_string() == "base64"))
    throw std::runtime_error(fmt::format("contentEncoding {} is not checked: only \"base64\" is",
                                         json::serialize(*encoding)));
  const json::value* padding = schema.if_contains(padding_keyword);
  if (!padding) return;
  if (!encoding)
    throw std::runtime_error(
        fmt::format("{} needs contentEncoding \"base64\" beside it", padding_keyword));
  if (*padding == "optional") {
    *encoding = base64_padding_optional;
  } else if (*padding != "required") {
    throw std::runtime_error(fmt::format("{} must be \"required\" or \"optional\", not {}",
                                         padding_keyword, json::serialize(*padding)));
  }
}

void add_keyword_builders(valijson::SchemaParser& parser) {
  // The parser owns a builder once added (not if adding throws).
  auto encoding = std::make_unique<content_encoding_builder>();
  parser.addConstraintBuilder("contentEncoding", encoding.get());
  encoding.release();
  auto format = std::make_unique<format_builder>();
  parser.addConstraintBuilder("format", format.get());
  format.release();
  auto total = std::make_unique<total_items_builder>();
  parser.addConstraintBuilder("x-max-total-items", total.get());
  total.release();
  auto structured = std::make_unique<structured_fields_builder>();
  parser.addConstraintBuilder("x-structured-fields", structured.get());
  structured.release();
  auto case_insensitive = std::make_unique<case_insensitive_names_builder>();
  parser.addConstraintBuilder("x-case-insensitive-names", case_insensitive.get());
  case_insensitive.release();
}

}  // namespace jobs::detail
