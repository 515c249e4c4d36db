// minisign's key and signature formats (https://jedisct1.github.io/minisign/,
// "Signature format"), Ed25519 + BLAKE2b from libsodium, so Debian's minisign and m4forge interoperate.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m4::minisign {

using KeyNum = std::array<uint8_t, 8>;

struct PublicKey {
  KeyNum keynum{};
  std::array<uint8_t, 32> pk{};
  // As minisign prints it: the key number read as little-endian u64, upper-case hex.
  std::string key_id() const;
};

struct SecretKey {
  KeyNum keynum{};
  std::array<uint8_t, 64> sk{};  // libsodium layout: seed(32) || pk(32)
  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();  // wipes sk
  PublicKey public_key() const;
};

// scrypt cost of an encrypted secret key. minisign writes "sensitive"; any
// limits are read back from the file, so "interactive" keys work with minisign too.
struct KdfLimits {
  uint64_t opslimit = 33554432ULL;    // crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE
  uint64_t memlimit = 1073741824ULL;  // ..._MEMLIMIT_SENSITIVE
  static KdfLimits interactive() { return {524288ULL, 16777216ULL}; }
};

// A fresh key pair; `password` empty = unencrypted (minisign -G -W).
struct GeneratedKey {
  SecretKey secret;
  std::string secret_file;  // text of KEY.key
  std::string public_file;  // text of KEY.pub
};
GeneratedKey generate_key(const std::string& password, const KdfLimits& limits = {});
// Writes BASE.key (mode 0600 from its first byte: no window where others may
// read it) and BASE.pub; never overwrites either. Returns the key pair.
GeneratedKey write_key_files(const std::filesystem::path& base, const std::string& password, const KdfLimits& limits = {});
// A key pair from a fixed 32-byte seed: reproducible keys for fuzzers and seed corpora only.
SecretKey secret_key_from_seed(const std::array<uint8_t, 32>& seed, const KeyNum& keynum);

// Parsers take the file text; `where` names the file in one-line errors.
PublicKey parse_public_key(std::string_view text, const std::string& where);
PublicKey read_public_key(const std::filesystem::path& path);
// An unencrypted key needs no password; an encrypted one without it is an error.
SecretKey parse_secret_key(std::string_view text, const std::optional<std::string>& password, const std::string& where);
SecretKey read_secret_key(const std::filesystem::path& path, const std::optional<std::string>& password);
// The first line of a password file (trailing CR/LF dropped).
std::string read_password_file(const std::filesystem::path& path);

enum class SigAlg { kPrehashed, kLegacy };  // "ED" (BLAKE2b-512 of the file signed) / "Ed" (the file itself)

struct Signature {
  std::string untrusted_comment;
  SigAlg alg = SigAlg::kPrehashed;
  KeyNum keynum{};
  std::array<uint8_t, 64> sig{};
  std::string trusted_comment;
  std::array<uint8_t, 64> global_sig{};  // over sig || trusted_comment
};

// The .minisig text for `message`, prehashed (what minisign -S writes by default).
std::string sign(const SecretKey& key, std::string_view message, const std::string& trusted_comment,
                 const std::string& untrusted_comment = "signature from m4forge secret key");
// Same, non-prehashed ("Ed"); exists so tests can make the legacy form the verifier refuses.
std::string sign_legacy(const SecretKey& key, std::string_view message, const std::string& trusted_comment);

Signature parse_signature(std::string_view text, const std::string& where);
// Checks, in order: key id, prehashed algorithm, the signature over `message`,
// the global signature over the trusted comment. Throws m4::Error naming `where` and the check.
void verify(const PublicKey& key, const Signature& sig, std::string_view message, const std::string& where);

// Base64 (standard alphabet, padded), as minisign writes it.
std::string base64_encode(const uint8_t* data, size_t size);
// Its inverse; m4::Error(kBadInput) "<where>: <what> is not valid base64".
std::vector<uint8_t> base64_decode(std::string_view s, const std::string& where, const char* what);

}  // namespace m4::minisign
