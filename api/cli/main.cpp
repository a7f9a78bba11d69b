// jobsctl: see api/cli/cli.hpp.
#include "api/cli/cli.hpp"

int main(int argc, char** argv) {
  return jobs::cli::run(std::vector<std::string>(argv + 1, argv + argc));
}
