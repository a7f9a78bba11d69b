#include "support/files.hpp"

#include <fstream>
#include <sstream>

namespace jobs::test {

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace jobs::test
