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
  if (!errors.empty()) {
    auto& list = o["errors"].emplace_array();
    for (const auto& e : errors) {
      auto item = e.to_json();
      item.erase("type");
      item.erase("status");
      list.push_back(std::move(item));
    }
  }
  return o;
}

}  // namespace jobs
