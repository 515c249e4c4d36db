// SHA-256 (OpenSSL EVP) with a streaming interface, so multi-GB weights are
// hashed straight from their mapping without a second copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace m4 {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Sha256Digest finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Sha256Digest sha256(const void* data, size_t size);
inline Sha256Digest sha256(std::string_view s) { return sha256(s.data(), s.size()); }
std::string to_hex(const Sha256Digest& d);
// SHA-256 of a whole file, read through mmap.
Sha256Digest sha256_file(const std::filesystem::path& path);

}  // namespace m4
