// SHA-256 via OpenSSL's EVP interface, which uses the CPU's SHA extensions
// (~1.5 GB/s per core here, against ~0.24 GB/s for libsodium's portable C).
#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/error.h"
#include "core/mapped_file.h"

namespace m4 {

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  M4_CHECK(state_->ctx != nullptr && EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) == 1,
           ErrorCode::kInternal, "OpenSSL failed to initialise SHA-256");
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size) {
  M4_CHECK(EVP_DigestUpdate(state_->ctx, data, size) == 1, ErrorCode::kInternal, "SHA-256 update failed");
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  unsigned int n = 0;
  M4_CHECK(EVP_DigestFinal_ex(state_->ctx, d.data(), &n) == 1 && n == d.size(), ErrorCode::kInternal,
           "SHA-256 final failed");
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
