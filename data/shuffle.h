// Seeded, platform-independent randomness for sample orders: SplitMix64
// (Steele et al., "Fast splittable pseudorandom number generators", 2014) and
// Fisher-Yates. std::shuffle is not used: its output differs between standard
// libraries, and a resumed run must see exactly the same order anywhere.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace m4::data {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0, without modulo bias (rejection).
  uint64_t below(uint64_t n) {
    const uint64_t limit = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      uint64_t r = next();
      if (r >= limit) return r % n;
    }
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

// One seed from two (seed, epoch) / (seed, class), well mixed.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  Rng r(a ^ (0x632be59bd9b4e019ull * (b + 1)));
  r.next();
  return r.next();
}

// In-place Fisher-Yates; with `prefix` < size only the first `prefix` entries
// are drawn (a uniform random subset in random order).
template <typename T>
void shuffle_prefix(std::vector<T>& v, Rng& rng, size_t prefix) {
  const size_t n = v.size();
  for (size_t i = 0; i < prefix && i + 1 < n; ++i) {
    size_t j = i + static_cast<size_t>(rng.below(n - i));
    std::swap(v[i], v[j]);
  }
}

template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  shuffle_prefix(v, rng, v.size());
}

}  // namespace m4::data
