#pragma once
// Reading a whole file in a test (a log, a script's output, a document).

#include <string>

namespace jobs::test {

/// The file's bytes; empty when it cannot be read.
std::string file_text(const std::string& path);

}  // namespace jobs::test
