#include "webhook.hpp"

#include "common/job.hpp"
#include "common/keys.hpp"
#include "common/webhook_signature.hpp"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include <random>
#include <stdexcept>

namespace jobs::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;

std::string webhook_job(int sink_port, int payload_bytes) {
  std::string head = R"({"queue":"webhooks","type":"deliver","payload":{"url":)" +
                     fmt::format(R"("http://127.0.0.1:{}/hook","body":{{"pad":")", sink_port);
  constexpr std::size_t tail = 4;  // "}}}
  auto fixed = head.size() + tail;
  std::string pad(static_cast<std::size_t>(payload_bytes) > fixed ? payload_bytes - fixed : 0, 'x');
  return head + pad + R"("}}})";
}

void create_webhook_endpoint(pqxx::connection& c, int api_port, const std::string& tenant) {
  auto key = create_api_key(c, tenant_id{tenant}, "bench-admin", "admin");
  std::random_device rd;
  std::string bytes(32, '\0');
  for (auto& b : bytes) b = static_cast<char>(rd() & 0xff);
  auto secret = "whsec_" + webhooks::base64_encode(bytes);

  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(api_port)});
  http::request<http::string_body> req{http::verb::put, "/v1/webhook-endpoints/default", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + key);
  req.set(http::field::content_type, "application/json");
  req.body() = R"({"secrets":[")" + secret + R"("]})";
  req.prepare_payload();
  http::write(sock, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  if (res.result_int() != 200 && res.result_int() != 201)
    throw std::runtime_error(
        fmt::format("PUT /v1/webhook-endpoints/default: {} {}", res.result_int(), res.body()));
}

long undelivered(pqxx::connection& c, const std::string& tenant,
                 const std::unordered_set<std::string>& delivered) {
  pqxx::nontransaction n(c);
  auto r = n.exec_params("SELECT id::text FROM jobs WHERE tenant_id = $1 AND state = 'succeeded'",
                         tenant);
  long missing = 0;
  for (const auto& row : r)
    if (!delivered.contains(row[0].as<std::string>())) ++missing;
  return missing;
}

}  // namespace jobs::bench
