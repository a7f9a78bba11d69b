#include "workers/handler.hpp"

namespace jobs {

void handler_registry::add(std::string queue, std::string type, handler_fn fn) {
  handlers_[{std::move(queue), std::move(type)}] = std::move(fn);
}

const handler_fn* handler_registry::find(std::string_view queue, std::string_view type) const {
  auto it = handlers_.find(std::pair<std::string, std::string>{queue, type});
  return it == handlers_.end() ? nullptr : &it->second;
}

}  // namespace jobs
