#pragma once
// schemas/openapi.json as a test oracle: the operations it documents, and
// validation of a response body against one of its component schemas.

#include <boost/json/value.hpp>

#include <set>
#include <string>
#include <vector>

namespace jobs::test {

class openapi_contract {
 public:
  openapi_contract();  ///< loads JOBS_SOURCE_DIR/schemas/openapi.json
  /// "GET /v1/jobs/{id}", …
  std::set<std::string> operations() const;
  /// Errors of `body` against components.schemas.<component>; empty when valid.
  std::vector<std::string> violations(const std::string& component,
                                      const boost::json::value& body) const;

 private:
  boost::json::value resolve(const boost::json::value& v, int depth) const;
  boost::json::value doc_;
};

}  // namespace jobs::test
