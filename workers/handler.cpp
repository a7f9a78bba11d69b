#include "workers/handler.hpp"

namespace jobs {

void handler_registry::add(std::string queue, std::string type, handler_fn fn) {
  async_.erase({queue, type});
  handlers_[{std::move(queue), std::move(type)}] = std::move(fn);
}

void handler_registry::add_async(std::string queue, std::string type, async_handler_fn fn) {
  handlers_.erase({queue, type});
  async_[{std::move(queue), std::move(type)}] = std::move(fn);
}

const handler_fn* handler_registry::find(std::string_view queue, std::string_view type) const {
  auto it = handlers_.find(std::pair<std::string, std::string>{queue, type});
  return it == handlers_.end() ? nullptr : &it->second;
}

const async_handler_fn* handler_registry::find_async(std::string_view queue,
                                                     std::string_view type) const {
  auto it = async_.find(std::pair<std::string, std::string>{queue, type});
  return it == async_.end() ? nullptr : &it->second;
}

bool handler_registry::has_async(std::string_view queue) const {
  for (const auto& [k, fn] : async_)
    if (k.first == queue) return true;
  return false;
}

}  // namespace jobs
