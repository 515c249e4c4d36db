// `m4forge peft`: adapter planning and HF PEFT interop (placeholder).
#include <iostream>

#include "cli/cli_common.h"

namespace m4::cli {
int run_peft(int argc, char** argv) {
  std::cerr << "m4forge: error: peft is not built yet\n";
  return 2;
}
}  // namespace m4::cli
