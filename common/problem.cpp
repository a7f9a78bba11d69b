#include "common/problem.hpp"

namespace jobs {

boost::json::object problem::to_json() const {
  boost::json::object o;
  o["type"] = "urn:jobs:problem:" + code;
  o["title"] = title;
  o["status"] = status;
  o["code"] = code;
  if (!detail.empty()) o["detail"] = detail;
  if (!pointer.empty()) o["pointer"] = pointer;
  if (!parameter.empty()) o["parameter"] = parameter;
  return o;
}

}  // namespace jobs
