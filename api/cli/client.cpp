#include "api/cli/client.hpp"

#include "api/cli/args.hpp"

#include <openssl/ssl.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <optional>

namespace jobs::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

api_url parse_api_url(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return usage_error(
        fmt::format("--url '{}': {} (expected http(s)://host[:port][/path])", text, why));
  };
  auto u = boost::urls::parse_uri(text);
  if (!u) throw bad("not a URL");
  api_url out;
  if (u->scheme() == "https") {
    out.tls = true;
  } else if (u->scheme() != "http") {
    throw bad("the scheme must be http or https");
  }
  out.host = u->host_address();
  if (out.host.empty()) throw bad("no host");
  if (u->has_query() || u->has_fragment()) throw bad("no query or fragment allowed");
  if (u->has_userinfo()) throw bad("pass the key with --key, not in the URL");
  out.port = u->has_port() ? std::string(u->port()) : out.tls ? "443" : "80";
  out.path = u->encoded_path();
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  return out;
}

namespace {

struct exchange_state {
  std::string phase = "resolve";  ///< what was under way, for the error
};

template <class Stream>
asio::awaitable<http_reply> exchange(Stream& stream, const http::request<http::string_body>& req,
                                     std::size_t limit, exchange_state& st) {
  st.phase = "send the request to";
  co_await http::async_write(stream, req, asio::use_awaitable);
  st.phase = "read the answer from";
  // Bounded: the body passes through it; only a chunk size line could grow it.
  beast::flat_buffer buffer((16 << 10) + (64 << 10));
  http::response_parser<http::string_body> parser;
  parser.body_limit(limit);
  parser.header_limit(16 << 10);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  auto& res = parser.get();
  http_reply r;
  r.status = static_cast<int>(res.result_int());
  r.reason = std::string(res.reason());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  r.content_type = r.headers["content-type"];
  r.body = std::move(res.body());
  co_return r;
}

asio::awaitable<http_reply> run_request(const api_url& url, const client_options& opts,
                                        asio::ssl::context& tls,
                                        const http::request<http::string_body>& req,
                                        exchange_state& st) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto results = co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable);
  st.phase = "connect to";
  if (!url.tls) {
    beast::tcp_stream stream(ex);
    stream.expires_after(opts.timeout);
    co_await stream.async_connect(results, asio::use_awaitable);
    auto r = co_await exchange(stream, req, opts.body_limit, st);
    co_return r;
  }
  beast::ssl_stream<beast::tcp_stream> stream(ex, tls);
  beast::get_lowest_layer(stream).expires_after(opts.timeout);
  co_await beast::get_lowest_layer(stream).async_connect(results, asio::use_awaitable);
  st.phase = "complete a TLS handshake with";
  boost::system::error_code ec;
  asio::ip::make_address(url.host, ec);
  if (ec) SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  auto r = co_await exchange(stream, req, opts.body_limit, st);
  co_return r;
}

}  // namespace

api_client::api_client(client_options o) : opts_(std::move(o)), url_(parse_api_url(opts_.url)) {}

http_reply api_client::request(std::string_view method, std::string_view target,
                               const std::string& body,
                               const std::map<std::string, std::string>& headers) const {
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.target(url_.path + std::string(target));
  req.version(11);
  bool default_port = url_.port == (url_.tls ? "443" : "80");
  auto host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
  req.set(http::field::host, default_port ? host : host + ":" + url_.port);
  req.set(http::field::user_agent, "jobsctl");
  req.set(http::field::accept, "application/json");
  if (!opts_.key.empty()) req.set(http::field::authorization, "Bearer " + opts_.key);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(false);
  req.prepare_payload();

  asio::ssl::context tls(asio::ssl::context::tls_client);
  if (url_.tls) {
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1);
    tls.set_default_verify_paths();
    if (!opts_.ca_file.empty()) {
      boost::system::error_code ec;
      tls.load_verify_file(opts_.ca_file, ec);
      if (ec) throw usage_error(fmt::format("--ca-file {}: {}", opts_.ca_file, ec.message()));
    }
    tls.set_verify_mode(asio::ssl::verify_peer);
  }

  exchange_state st;
  std::optional<http_reply> reply;
  std::exception_ptr error;
  asio::io_context ioc;
  asio::co_spawn(ioc, run_request(url_, opts_, tls, req, st),
                 [&](std::exception_ptr e, http_reply r) {
                   if (e)
                     error = e;
                   else
                     reply = std::move(r);
                 });
  // The stream's deadline covers connecting and the exchange; this one the
  // name lookup too.
  ioc.run_for(opts_.timeout + std::chrono::seconds(1));
  if (reply) return std::move(*reply);
  auto where = fmt::format("{} {}", st.phase, opts_.url);
  if (!error)
    throw connection_error(fmt::format("could not {} within {} ms", where, opts_.timeout.count()));
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    if (e.code() == beast::error::timeout)
      throw connection_error(
          fmt::format("could not {} within {} ms", where, opts_.timeout.count()));
    throw connection_error(fmt::format("could not {}: {}", where, e.code().message()));
  } catch (const std::exception& e) {
    throw connection_error(fmt::format("could not {}: {}", where, e.what()));
  }
}

}  // namespace jobs::cli
