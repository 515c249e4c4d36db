// libFuzzer target: the bundle reader (tar structure, minisign signature,
// manifest, digests, adapter header) on arbitrary bytes. Only m4::Error may
// escape the reader; anything else (or a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/bundle_reader.h"
#include "core/error.h"
#include "fuzz/fuzz_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const m4::minisign::PublicKey key = m4::fuzz::fuzz_key().public_key();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    m4::verify_bundle_bytes(bytes, &key, "fuzz.m4adapter");
  } catch (const m4::Error&) {
  }
  // Without the key, mutated manifests and adapters get past the signature.
  try {
    m4::verify_bundle_bytes(bytes, nullptr, "fuzz.m4adapter");
  } catch (const m4::Error&) {
  }
  return 0;
}
