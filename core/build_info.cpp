// M4_VERSION / M4_GIT_REV come from export/CMakeLists.txt, on this file only.
#include "core/build_info.h"

namespace m4 {
const char* m4forge_version() { return M4_VERSION; }
const char* m4forge_revision() { return M4_GIT_REV; }
}  // namespace m4
