// SHA-256 via libsodium's crypto_hash_sha256 streaming API.
#include "firmware/sha256.h"

#include <sodium.h>

#include "firmware/error.h"
#include "firmware/mapped_file.h"

namespace m4 {

struct Sha256::State {
  crypto_hash_sha256_state s;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  M4_CHECK(sodium_init() >= 0, ErrorCode::kInternal, "libsodium failed to initialise");
  crypto_hash_sha256_init(&state_->s);
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size) {
  // libsodium takes unsigned long long lengths; feed in bounded chunks anyway.
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr size_t kChunk = size_t{1} << 30;
  while (size > 0) {
    size_t n = size < kChunk ? size : kChunk;
    crypto_hash_sha256_update(&state_->s, p, n);
    p += n;
    size -= n;
  }
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  crypto_hash_sha256_final(&state_->s, d.data());
  return d;
}

Sha256Digest sha256(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.finish();
}

std::string to_hex(const Sha256Digest& d) {
  static const char* kHex = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    s[2 * i] = kHex[d[i] >> 4];
    s[2 * i + 1] = kHex[d[i] & 15];
  }
  return s;
}

Sha256Digest sha256_file(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return sha256(file->data(), file->size());
}

}  // namespace m4
