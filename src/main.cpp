// Command line only: run, --check, --version.
#include <cstring>
#include <iostream>
#include <string>

#include "portier/server/server.hpp"

namespace {

void usage(std::ostream& out) {
  out << "usage: portier --config FILE    run the proxy\n"
         "       portier --check FILE     validate a config: every error with its JSON pointer\n"
         "       portier --version\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-V") == 0)) {
    std::cout << "portier " << PORTIER_VERSION << "\n";
    return 0;
  }
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    usage(std::cout);
    return 0;
  }
  if (argc == 3 && std::strcmp(argv[1], "--check") == 0) return portier::server::check(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "--config") == 0) {
    try {
      return portier::server::run(argv[2]);
    } catch (const std::exception& e) {
      std::cerr << "portier: fatal: " << e.what() << "\n";
      return 1;
    }
  }
  usage(std::cerr);
  return 2;
}
