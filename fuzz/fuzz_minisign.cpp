// libFuzzer target: minisign's key and signature parsers on arbitrary text
// (public key, unencrypted secret key, signature), and a signature check with
// the fixed fuzz key. Only m4::Error may leave them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "bundle/minisign.h"
#include "core/error.h"
#include "fuzz/fuzz_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    m4::minisign::parse_public_key(text, "fuzz.pub");
  } catch (const m4::Error&) {
  }
  try {
    m4::minisign::parse_secret_key(text, std::nullopt, "fuzz.key");
  } catch (const m4::Error&) {
  }
  try {
    const m4::minisign::Signature sig = m4::minisign::parse_signature(text, "fuzz.minisig");
    m4::minisign::verify(m4::fuzz::fuzz_key().public_key(), sig, "m4forge fuzz message", "fuzz.minisig");
  } catch (const m4::Error&) {
  }
  return 0;
}
