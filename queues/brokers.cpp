#include "queues/brokers.hpp"

#include <fmt/format.h>

#include <fstream>
#include <string>
#include <utility>

namespace jobs {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<amqp_address> parse_amqp_urls(std::string_view list) {
  std::vector<amqp_address> out;
  for (;;) {
    auto comma = list.find(',');
    auto entry = trim(list.substr(0, comma));
    if (entry.empty()) throw amqp_error("empty entry in the broker address list");
    if (entry.find("://") != std::string_view::npos) {
      out.push_back(parse_amqp_url(entry));
    } else {
      if (out.empty()) throw amqp_error("the first broker address must be an amqp:// URL");
      if (entry.find_first_of("@/") != std::string_view::npos)
        throw amqp_error(fmt::format("{:?}: expected host[:port] or an amqp:// URL", entry));
      // host[:port] with the first entry's credentials and vhost.
      auto node = parse_amqp_url("amqp://" + std::string(entry));
      amqp_address a = out.front();
      a.host = node.host;
      a.port = node.port;
      out.push_back(std::move(a));
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

void check_amqp_tls_files(std::string_view list) {
  for (const auto& a : parse_amqp_urls(list))
    for (auto [what, path] :
         {std::pair{"cacertfile", &a.ca_file}, std::pair{"certfile", &a.cert_file},
          std::pair{"keyfile", &a.key_file}})
      if (!path->empty() && !std::ifstream(*path))
        throw amqp_error(fmt::format("{} {:?} cannot be read", what, *path));
}

broker_list::broker_list(std::string_view urls) : nodes_(parse_amqp_urls(urls)) {}

std::unique_ptr<amqp_connection> broker_list::connect(int heartbeat_s) {
  std::string errors;
  // A fresh list starts at the first node; a reconnect at the one after the last used.
  std::size_t first = connected_once_ ? (current_ + 1) % nodes_.size() : 0;
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    auto i = (first + k) % nodes_.size();
    try {
      auto c = std::make_unique<amqp_connection>(nodes_[i], heartbeat_s);
      current_ = i;
      connected_once_ = true;
      return c;
    } catch (const amqp_error& e) {
      if (!errors.empty()) errors += "; ";
      errors += e.what();
    }
  }
  throw amqp_error(nodes_.size() == 1 ? errors : "no broker node accepts: " + errors);
}

}  // namespace jobs
