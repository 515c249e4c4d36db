// The fixed key the bundle fuzzer and its seed corpus share, so seeds pass the
// signature check and mutations explore what lies behind it.
#pragma once

#include "bundle/minisign.h"

namespace m4::fuzz {
inline minisign::SecretKey fuzz_key() {
  std::array<uint8_t, 32> seed{};
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(i * 37 + 11);
  return minisign::secret_key_from_seed(seed, {1, 2, 3, 4, 5, 6, 7, 8});
}
}  // namespace m4::fuzz
