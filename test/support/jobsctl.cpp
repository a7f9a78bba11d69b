#include "support/jobsctl.hpp"
#include "support/files.hpp"

#include "support/live.hpp"

#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace jobs::test {

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

cli_result jobsctl::operator()(const std::vector<std::string>& args, const std::string& stdin_text,
                               const std::map<std::string, std::string>& env) const {
  static std::atomic<int> runs{0};
  auto base = dir + "/jobsctl." + std::to_string(++runs);
  std::ofstream(base + ".in") << stdin_text;
  std::string cmd = "env -u JOBS_URL -u JOBS_API_KEY -u JOBS_API_KEY_FILE";
  if (!url.empty()) cmd += " JOBS_URL=" + quote(url);
  if (!key.empty()) cmd += " JOBS_API_KEY=" + quote(key);
  for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
  cmd += " timeout 60 " + quote(binary("jobsctl"));
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " <" + quote(base + ".in") + " >" + quote(base + ".out") + " 2>" + quote(base + ".err");
  int raw = std::system(cmd.c_str());
  cli_result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = file_text(base + ".out");
  r.err = file_text(base + ".err");
  return r;
}

}  // namespace jobs::test
