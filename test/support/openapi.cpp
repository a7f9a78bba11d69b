#include "support/openapi.hpp"
#include "support/files.hpp"

#include <boost/json/parse.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <stdexcept>

namespace jobs::test {

openapi_contract::openapi_contract() {
  doc_ = boost::json::parse(file_text(std::string(JOBS_SOURCE_DIR) + "/schemas/openapi.json"));
}

std::set<std::string> openapi_contract::operations() const {
  std::set<std::string> out;
  for (const auto& [path, item] : doc_.at("paths").as_object())
    for (const auto& [method, op] : item.as_object()) {
      std::string m(method);
      for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.insert(m + " " + std::string(path));
    }
  return out;
}

// Inlines "#/components/schemas/X" references so valijson sees one document.
boost::json::value openapi_contract::resolve(const boost::json::value& v, int depth) const {
  if (depth > 32) throw std::runtime_error("openapi: $ref cycle");
  if (auto* o = v.if_object()) {
    if (auto* ref = o->if_contains("$ref")) {
      std::string r(ref->as_string());
      const std::string prefix = "#/components/schemas/";
      if (!r.starts_with(prefix)) throw std::runtime_error("openapi: unsupported $ref " + r);
      return resolve(doc_.at("components").at("schemas").at(r.substr(prefix.size())), depth + 1);
    }
    boost::json::object out;
    for (const auto& [k, x] : *o) out[k] = resolve(x, depth + 1);
    return out;
  }
  if (auto* a = v.if_array()) {
    boost::json::array out;
    for (const auto& x : *a) out.push_back(resolve(x, depth + 1));
    return out;
  }
  return v;
}

std::vector<std::string> openapi_contract::violations(const std::string& component,
                                                      const boost::json::value& body) const {
  auto schema_json = resolve(doc_.at("components").at("schemas").at(component), 0);
  valijson::Schema schema;
  valijson::SchemaParser parser;
  valijson::adapters::BoostJsonAdapter schema_adapter(schema_json);
  parser.populateSchema(schema_adapter, schema);
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter target(body);
  std::vector<std::string> out;
  if (validator.validate(schema, target, &results)) return out;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    std::string where;
    for (const auto& c : e.context) where += c;
    out.push_back(where + ": " + e.description);
  }
  return out;
}

}  // namespace jobs::test
