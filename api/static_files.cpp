#include "api/static_files.hpp"

#include "api/submission.hpp"

#include <boost/beast/http/field.hpp>

#include <fstream>
#include <sstream>

namespace jobs {

namespace {

std::string_view media_type(std::string_view file) {
  auto dot = file.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view{} : file.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  return "application/octet-stream";
}

bool safe_relative_path(std::string_view rel) {
  if (rel.empty() || rel.size() > 256) return false;
  bool segment_start = true;
  for (char c : rel) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/';
    if (!ok || (segment_start && (c == '.' || c == '/'))) return false;
    segment_start = c == '/';
  }
  return !segment_start;
}

}  // namespace

http_response serve_static(const std::string& dir, std::string_view prefix, std::string_view path,
                           const http_request& req) {
  auto fail = [&](const problem& p) {
    return router::problem_response(p, req.version(), req.keep_alive());
  };
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = fail(make_problem(405, "method_not_allowed", "use GET, HEAD"));
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (path == prefix) {
    http_response res{http::status::moved_permanently, req.version()};
    res.set(http::field::location, std::string(prefix) + "/");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }
  auto rel = path.substr(prefix.size() + 1);
  if (rel.empty()) rel = "index.html";
  if (dir.empty() || !safe_relative_path(rel))
    return fail(make_problem(404, "not_found", "no such file"));
  std::string file = dir + "/" + std::string(rel);
  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  if (!in || !(body << in.rdbuf()) || body.str().size() > max_static_file)
    return fail(make_problem(404, "not_found", "no such file"));
  http_response res{http::status::ok, req.version()};
  res.set(http::field::content_type, media_type(rel));
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'");
  res.set("Referrer-Policy", "no-referrer");
  res.keep_alive(req.keep_alive());
  res.body() = body.str();
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();
  return res;
}

}  // namespace jobs
