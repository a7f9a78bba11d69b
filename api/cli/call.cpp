// The REST call every command makes, and its small helpers.
#include "api/cli/commands.hpp"

#include "api/cli/output.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include <ostream>

namespace jobs::cli {

api_answer call(const context& c, std::string_view method, const std::string& target,
                const std::string& body, const std::map<std::string, std::string>& headers) {
  api_answer a{c.client.request(method, target, body, headers), nullptr};
  if (a.reply.status < 200 || a.reply.status > 299) {
    // Scripts get the problem itself too.
    if (c.json && !a.reply.body.empty())
      c.out << a.reply.body << (a.reply.body.ends_with('\n') ? "" : "\n");
    throw api_error(describe_problem(a.reply), a.reply.status);
  }
  if (a.reply.body.empty()) return a;
  boost::json::error_code ec;
  a.json = boost::json::parse(a.reply.body, ec);
  if (ec)
    throw connection_error(fmt::format("{} {}{} answered {} with a body that is not JSON: {}",
                                       method, c.client.options().url, target, a.reply.status,
                                       clip(a.reply.body, 120)));
  return a;
}

void print_raw(const context& c, const api_answer& a) {
  const auto& b = a.reply.body;
  c.out << b << (b.ends_with('\n') ? "" : "\n");
}

std::string url_encode(std::string_view text) {
  std::string out;
  for (char ch : text) {
    auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
      out += ch;
    else
      out += fmt::format("%{:02X}", u);
  }
  return out;
}

}  // namespace jobs::cli
