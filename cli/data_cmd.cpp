// `m4forge data`: dataset import and inspection (placeholder).
#include <iostream>

#include "cli/cli_common.h"

namespace m4::cli {
int run_data(int argc, char** argv) {
  std::cerr << "m4forge: error: data is not built yet\n";
  return 2;
}
}  // namespace m4::cli
