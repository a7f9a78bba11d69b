#pragma once
// Static files under a URL prefix (the dashboard at /admin/), read from a
// directory on each request (they are small, and an edit shows at once).
//
//   GET|HEAD <prefix>          301 to <prefix>/
//   GET|HEAD <prefix>/         <dir>/index.html
//   GET|HEAD <prefix>/<path>   <dir>/<path>: letters, digits, '-', '_', '.', '/' only, no
//                              segment starting with '.', at most `max_static_file` bytes
// Anything else is a problem+json 404 (405 for other methods). Files go out
// with their media type, `Cache-Control: no-cache` and a Content-Security-
// Policy allowing only this origin. The files need no key: the page asks
// for one and sends it with its API calls.
// Thread-safety: a pure function of the file system.

#include "api/router.hpp"

#include <string>
#include <string_view>

namespace jobs {

inline constexpr std::size_t max_static_file = 4 << 20;

http_response serve_static(const std::string& dir, std::string_view prefix, std::string_view path,
                           const http_request& req);

}  // namespace jobs
