// minisign's key and signature formats on libsodium (see minisign.h). Layouts,
// from minisign.h upstream: public key "Ed" keynum(8) pk(32); secret key "Ed"
// kdf(2) "B2" salt(32) opslimit(8) memlimit(8) [keynum(8) sk(64) chk(32)] with
// the bracket XORed by an scrypt stream when kdf is "Sc"; signature "ED"|"Ed" keynum(8) sig(64).
#include "bundle/minisign.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>

#include <cstring>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4::minisign {
namespace {

constexpr size_t kKeynumSkBytes = 8 + 64 + 32;
constexpr size_t kSecretKeyBytes = 2 + 2 + 2 + 32 + 8 + 8 + kKeynumSkBytes;
constexpr size_t kPublicKeyBytes = 2 + 8 + 32;
constexpr size_t kSigBytes = 2 + 8 + 64;
constexpr const char* kUntrusted = "untrusted comment: ";
constexpr const char* kTrusted = "trusted comment: ";
// A hostile key file must not make us allocate or spin without bound.
constexpr uint64_t kMaxMemlimit = 4ULL << 30;
constexpr uint64_t kMaxOpslimit = 1ULL << 32;

void init_sodium() {
  static const int ok = sodium_init();
  M4_CHECK(ok >= 0, ErrorCode::kInternal, "libsodium failed to initialise");
}

uint64_t le64_load(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void le64_store(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Splits minisign's line-oriented text; CR before LF is tolerated, as minisign does.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string_view comment_of(std::string_view line, const char* prefix, const std::string& where, const char* what) {
  M4_CHECK(line.substr(0, std::strlen(prefix)) == prefix, ErrorCode::kBadInput, where, ": ", what,
           " line does not start with '", prefix, "'");
  return line.substr(std::strlen(prefix));
}

void checksum(const uint8_t sig_alg[2], const uint8_t* keynum, const uint8_t* sk, uint8_t out[32]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, sig_alg, 2);
  crypto_generichash_update(&st, keynum, 8);
  crypto_generichash_update(&st, sk, 64);
  crypto_generichash_final(&st, out, 32);
}

std::string render_signature(const SecretKey& key, const char alg[2], std::string_view signed_bytes,
                             const std::string& trusted_comment, const std::string& untrusted_comment) {
  init_sodium();
  M4_CHECK(trusted_comment.find_first_of("\r\n") == std::string::npos && untrusted_comment.find_first_of("\r\n") == std::string::npos,
           ErrorCode::kInvalidArgument, "signature comments must be one line");
  uint8_t sig[kSigBytes];
  std::memcpy(sig, alg, 2);
  std::memcpy(sig + 2, key.keynum.data(), 8);
  crypto_sign_detached(sig + 10, nullptr, reinterpret_cast<const uint8_t*>(signed_bytes.data()), signed_bytes.size(),
                       key.sk.data());
  std::vector<uint8_t> global(64 + trusted_comment.size());
  std::memcpy(global.data(), sig + 10, 64);
  std::memcpy(global.data() + 64, trusted_comment.data(), trusted_comment.size());
  uint8_t global_sig[64];
  crypto_sign_detached(global_sig, nullptr, global.data(), global.size(), key.sk.data());
  return std::string(kUntrusted) + untrusted_comment + "\n" + base64_encode(sig, sizeof sig) + "\n" + kTrusted +
         trusted_comment + "\n" + base64_encode(global_sig, 64) + "\n";
}

std::array<uint8_t, 64> prehash(std::string_view message) {
  std::array<uint8_t, 64> h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const uint8_t*>(message.data()), message.size(), nullptr, 0);
  return h;
}

}  // namespace

std::string base64_encode(const uint8_t* data, size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string PublicKey::key_id() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(le64_load(keynum.data())));
  return buf;
}

SecretKey::~SecretKey() { sodium_memzero(sk.data(), sk.size()); }

PublicKey SecretKey::public_key() const {
  PublicKey p;
  p.keynum = keynum;
  std::memcpy(p.pk.data(), sk.data() + 32, 32);
  return p;
}

GeneratedKey generate_key(const std::string& password, const KdfLimits& limits) {
  init_sodium();
  GeneratedKey g;
  uint8_t pk[32];
  crypto_sign_keypair(pk, g.secret.sk.data());
  randombytes_buf(g.secret.keynum.data(), 8);

  uint8_t b[kSecretKeyBytes] = {};
  const uint8_t sig_alg[2] = {'E', 'd'};
  std::memcpy(b, sig_alg, 2);
  if (!password.empty()) std::memcpy(b + 2, "Sc", 2);  // else "\0\0": minisign -W
  std::memcpy(b + 4, "B2", 2);
  uint8_t* salt = b + 6;
  uint8_t* keynum_sk = b + 54;
  std::memcpy(keynum_sk, g.secret.keynum.data(), 8);
  std::memcpy(keynum_sk + 8, g.secret.sk.data(), 64);
  checksum(sig_alg, keynum_sk, keynum_sk + 8, keynum_sk + 72);
  if (!password.empty()) {
    randombytes_buf(salt, 32);
    le64_store(b + 38, limits.opslimit);
    le64_store(b + 46, limits.memlimit);
    uint8_t stream[kKeynumSkBytes];
    M4_CHECK(crypto_pwhash_scryptsalsa208sha256(stream, sizeof stream, password.data(), password.size(), salt,
                                                limits.opslimit, limits.memlimit) == 0,
             ErrorCode::kIo, "scrypt key derivation failed (out of memory?)");
    for (size_t i = 0; i < kKeynumSkBytes; ++i) keynum_sk[i] ^= stream[i];
    sodium_memzero(stream, sizeof stream);
  }
  g.secret_file = std::string(kUntrusted) + (password.empty() ? "minisign secret key\n" : "minisign encrypted secret key\n") +
                  base64_encode(b, sizeof b) + "\n";
  sodium_memzero(b, sizeof b);

  const PublicKey p = g.secret.public_key();
  uint8_t pb[kPublicKeyBytes];
  std::memcpy(pb, "Ed", 2);
  std::memcpy(pb + 2, p.keynum.data(), 8);
  std::memcpy(pb + 10, p.pk.data(), 32);
  g.public_file = std::string(kUntrusted) + "minisign public key " + p.key_id() + "\n" + base64_encode(pb, sizeof pb) + "\n";
  return g;
}

SecretKey secret_key_from_seed(const std::array<uint8_t, 32>& seed, const KeyNum& keynum) {
  init_sodium();
  SecretKey k;
  uint8_t pk[32];
  crypto_sign_seed_keypair(pk, k.sk.data(), seed.data());
  k.keynum = keynum;
  return k;
}

PublicKey parse_public_key(std::string_view text, const std::string& where) {
  init_sodium();
  const auto lines = lines_of(text);
  M4_CHECK(lines.size() >= 2, ErrorCode::kBadInput, where, ": not a minisign public key (expected a comment line and a base64 line)");
  comment_of(lines[0], kUntrusted, where, "public key's first");
  const auto b = base64_decode(lines[1], where, "public key");
  M4_CHECK(b.size() == kPublicKeyBytes && b[0] == 'E' && b[1] == 'd', ErrorCode::kBadInput, where,
           ": not a minisign Ed25519 public key (", b.size(), " bytes, expected ", kPublicKeyBytes, " starting with 'Ed')");
  PublicKey p;
  std::memcpy(p.keynum.data(), b.data() + 2, 8);
  std::memcpy(p.pk.data(), b.data() + 10, 32);
  return p;
}

PublicKey read_public_key(const std::filesystem::path& path) {
  return parse_public_key(read_text_file(path, 4096), path.string());
}

SecretKey parse_secret_key(std::string_view text, const std::optional<std::string>& password, const std::string& where) {
  init_sodium();
  const auto lines = lines_of(text);
  M4_CHECK(lines.size() >= 2, ErrorCode::kBadInput, where, ": not a minisign secret key (expected a comment line and a base64 line)");
  comment_of(lines[0], kUntrusted, where, "secret key's first");
  auto b = base64_decode(lines[1], where, "secret key");
  M4_CHECK(b.size() == kSecretKeyBytes && b[0] == 'E' && b[1] == 'd', ErrorCode::kBadInput, where,
           ": not a minisign Ed25519 secret key (", b.size(), " bytes, expected ", kSecretKeyBytes, ")");
  M4_CHECK(b[4] == 'B' && b[5] == '2', ErrorCode::kBadInput, where, ": unsupported checksum algorithm (expected B2)");
  const bool encrypted = b[2] == 'S' && b[3] == 'c';
  M4_CHECK(encrypted || (b[2] == 0 && b[3] == 0), ErrorCode::kBadInput, where,
           ": unsupported key derivation algorithm (expected Sc or none)");
  uint8_t* keynum_sk = b.data() + 54;
  if (encrypted) {
    M4_CHECK(password.has_value(), ErrorCode::kInvalidArgument, where,
             ": the secret key is password-protected (hint: pass --password-file)");
    const uint64_t ops = le64_load(b.data() + 38), mem = le64_load(b.data() + 46);
    M4_CHECK(ops <= kMaxOpslimit && mem <= kMaxMemlimit, ErrorCode::kBadInput, where,
             ": scrypt limits out of range (opslimit ", ops, ", memlimit ", mem, ")");
    uint8_t stream[kKeynumSkBytes];
    M4_CHECK(crypto_pwhash_scryptsalsa208sha256(stream, sizeof stream, password->data(), password->size(), b.data() + 6,
                                                ops, mem) == 0,
             ErrorCode::kIo, where, ": scrypt key derivation failed (out of memory?)");
    for (size_t i = 0; i < kKeynumSkBytes; ++i) keynum_sk[i] ^= stream[i];
    sodium_memzero(stream, sizeof stream);
  }
  uint8_t chk[32];
  checksum(b.data(), keynum_sk, keynum_sk + 8, chk);
  // minisign 0.11 -W leaves the checksum of unencrypted keys zero; accept that form too.
  static const uint8_t zero[32] = {};
  const bool chk_ok = sodium_memcmp(chk, keynum_sk + 72, 32) == 0 || (!encrypted && std::memcmp(zero, keynum_sk + 72, 32) == 0);
  if (!chk_ok) {
    sodium_memzero(b.data(), b.size());
    M4_FAIL(encrypted ? ErrorCode::kInvalidArgument : ErrorCode::kBadInput, where,
            encrypted ? ": wrong password for the secret key (checksum mismatch)" : ": secret key checksum mismatch (corrupt key file)");
  }
  SecretKey k;
  std::memcpy(k.keynum.data(), keynum_sk, 8);
  std::memcpy(k.sk.data(), keynum_sk + 8, 64);
  sodium_memzero(b.data(), b.size());
  return k;
}

SecretKey read_secret_key(const std::filesystem::path& path, const std::optional<std::string>& password) {
  return parse_secret_key(read_text_file(path, 4096), password, path.string());
}

std::string read_password_file(const std::filesystem::path& path) {
  std::string s = read_text_file(path, 4096);
  const size_t nl = s.find_first_of("\r\n");
  if (nl != std::string::npos) s.resize(nl);
  M4_CHECK(!s.empty(), ErrorCode::kInvalidArgument, path.string(), ": the password file's first line is empty");
  return s;
}

std::string sign(const SecretKey& key, std::string_view message, const std::string& trusted_comment,
                 const std::string& untrusted_comment) {
  init_sodium();
  const auto h = prehash(message);
  return render_signature(key, "ED", std::string_view(reinterpret_cast<const char*>(h.data()), h.size()), trusted_comment,
                          untrusted_comment);
}

std::string sign_legacy(const SecretKey& key, std::string_view message, const std::string& trusted_comment) {
  return render_signature(key, "Ed", message, trusted_comment, "signature from m4forge secret key (legacy)");
}

Signature parse_signature(std::string_view text, const std::string& where) {
  init_sodium();
  const auto lines = lines_of(text);
  M4_CHECK(lines.size() == 4 || (lines.size() == 5 && lines[4].empty()), ErrorCode::kBadInput, where,
           ": signature is not in minisign's 4-line form (", lines.size(), " lines)");
  Signature s;
  s.untrusted_comment = comment_of(lines[0], kUntrusted, where, "signature's first");
  const auto b = base64_decode(lines[1], where, "signature");
  M4_CHECK(b.size() == kSigBytes, ErrorCode::kBadInput, where, ": signature has ", b.size(), " bytes, expected ", kSigBytes);
  if (b[0] == 'E' && b[1] == 'D') {
    s.alg = SigAlg::kPrehashed;
  } else if (b[0] == 'E' && b[1] == 'd') {
    s.alg = SigAlg::kLegacy;
  } else {
    M4_FAIL(ErrorCode::kBadInput, where, ": unknown signature algorithm (expected ED)");
  }
  std::memcpy(s.keynum.data(), b.data() + 2, 8);
  std::memcpy(s.sig.data(), b.data() + 10, 64);
  s.trusted_comment = comment_of(lines[2], kTrusted, where, "signature's third");
  const auto g = base64_decode(lines[3], where, "trusted comment signature");
  M4_CHECK(g.size() == 64, ErrorCode::kBadInput, where, ": trusted comment signature has ", g.size(), " bytes, expected 64");
  std::memcpy(s.global_sig.data(), g.data(), 64);
  return s;
}

void verify(const PublicKey& key, const Signature& sig, std::string_view message, const std::string& where) {
  init_sodium();
  PublicKey signer;
  signer.keynum = sig.keynum;
  M4_CHECK(sig.keynum == key.keynum, ErrorCode::kMismatch, where, ": signature made by key ", signer.key_id(),
           ", not by the given public key ", key.key_id(), " (hint: wrong --pubkey, or signed by someone else)");
  M4_CHECK(sig.alg == SigAlg::kPrehashed, ErrorCode::kBadInput, where,
           ": legacy non-prehashed signature (Ed) refused; only minisign's prehashed ED signatures are accepted");
  const auto h = prehash(message);
  M4_CHECK(crypto_sign_verify_detached(sig.sig.data(), h.data(), h.size(), key.pk.data()) == 0, ErrorCode::kMismatch, where,
           ": signature does not verify (the signed file or the signature was changed)");
  std::vector<uint8_t> global(64 + sig.trusted_comment.size());
  std::memcpy(global.data(), sig.sig.data(), 64);
  std::memcpy(global.data() + 64, sig.trusted_comment.data(), sig.trusted_comment.size());
  M4_CHECK(crypto_sign_verify_detached(sig.global_sig.data(), global.data(), global.size(), key.pk.data()) == 0,
           ErrorCode::kMismatch, where, ": trusted comment signature does not verify (the trusted comment was changed)");
}

GeneratedKey write_key_files(const std::filesystem::path& base, const std::string& password, const KdfLimits& limits) {
  namespace fs = std::filesystem;
  const fs::path sec = base.string() + ".key", pub = base.string() + ".pub";
  M4_CHECK(!fs::exists(sec) && !fs::exists(pub), ErrorCode::kInvalidArgument, base.string(),
           ".key or .pub exists; refusing to overwrite a key (choose another --out)");
  GeneratedKey g = generate_key(password, limits);
  // O_EXCL with mode 0600: a rename of a 0644 temporary would leave a window where others can read it.
  const int fd = ::open(sec.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  M4_CHECK(fd >= 0, ErrorCode::kIo, sec.string(), ": cannot create the secret key file (",
           errno == EEXIST ? "it exists; refusing to overwrite a key" : std::strerror(errno), ")");
  const bool ok = ::write(fd, g.secret_file.data(), g.secret_file.size()) == static_cast<ssize_t>(g.secret_file.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    fs::remove(sec);
    M4_FAIL(ErrorCode::kIo, sec.string(), ": cannot write the secret key file");
  }
  write_file_atomic(pub, g.public_file);
  return g;
}

std::vector<uint8_t> base64_decode(std::string_view s, const std::string& where, const char* what) {
  std::vector<uint8_t> out(s.size() / 4 * 3 + 3);
  size_t len = 0;
  const char* end = nullptr;
  const int rc = sodium_base642bin(out.data(), out.size(), s.data(), s.size(), nullptr, &len, &end,
                                   sodium_base64_VARIANT_ORIGINAL);
  M4_CHECK(rc == 0 && end == s.data() + s.size(), ErrorCode::kBadInput, where, ": ", what, " is not valid base64");
  out.resize(len);
  return out;
}

}  // namespace m4::minisign
