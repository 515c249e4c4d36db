// The m4forge version and source revision this binary was built from, for
// provenance records (bundle manifests). Defined in one file so the revision
// define does not defeat ccache elsewhere.
#pragma once

namespace m4 {
const char* m4forge_version();   // "0.1.0"
const char* m4forge_revision();  // short git hash, or "unknown"
}  // namespace m4
