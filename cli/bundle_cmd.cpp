// keygen / export / verify / compat / run (placeholder).
#include <iostream>

#include "cli/cli_common.h"

namespace m4::cli {
int run_bundle_verb(const std::string& verb, int argc, char** argv) {
  std::cerr << "m4forge: error: " << verb << " is not built yet\n";
  return 2;
}
}  // namespace m4::cli
