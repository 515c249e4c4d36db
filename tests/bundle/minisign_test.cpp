// minisign key and signature formats: our files against Debian's minisign
// binary (the independent reference) in both directions, and every refusal.
#include "bundle/minisign.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/atomic_file.h"
#include "tests/support/cli_test.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
constexpr const char* kMinisign = "/usr/bin/minisign";

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

TEST(Minisign, SignVerifyRoundTripAndEveryTamperIsCaught) {
  const auto g = minisign::generate_key("");
  const minisign::PublicKey pub = minisign::parse_public_key(g.public_file, "k.pub");
  EXPECT_EQ(pub.key_id(), g.secret.public_key().key_id());
  EXPECT_NE(g.public_file.find("minisign public key " + pub.key_id()), std::string::npos);
  const std::string msg = "the manifest";
  const std::string text = minisign::sign(g.secret, msg, "m4forge bundle firmware_id=sha256:ab");
  const auto sig = minisign::parse_signature(text, "s");
  EXPECT_EQ(sig.trusted_comment, "m4forge bundle firmware_id=sha256:ab");
  minisign::verify(pub, sig, msg, "s");

  test::expect_error([&] { minisign::verify(pub, sig, "the manifesT", "s"); }, {"s: signature does not verify"});
  auto tc = sig;
  tc.trusted_comment += "x";
  test::expect_error([&] { minisign::verify(pub, tc, msg, "s"); }, {"trusted comment signature does not verify"});
  const auto other = minisign::generate_key("");
  test::expect_error([&] { minisign::verify(other.secret.public_key(), sig, msg, "s"); },
                     {"signature made by key " + pub.key_id(), "not by the given public key"});
  const auto legacy = minisign::parse_signature(minisign::sign_legacy(g.secret, msg, "c"), "s");
  test::expect_error([&] { minisign::verify(pub, legacy, msg, "s"); }, {"legacy non-prehashed signature (Ed) refused"});
  test::expect_error([&] { minisign::parse_signature("untrusted comment: x\n!!!\n", "s"); }, {"4-line form"});
  test::expect_error([&] { minisign::parse_signature("untrusted comment: x\n!!!!\ntrusted comment: y\nAAAA\n", "s"); },
                     {"s: signature is not valid base64"});
  test::expect_error([&] { minisign::parse_public_key("hello\nRWQ=\n", "k.pub"); }, {"k.pub: public key's first line"});
}

TEST(Minisign, PasswordProtectedSecretKey) {
  const auto g = minisign::generate_key("hunter2", minisign::KdfLimits::interactive());
  EXPECT_NE(g.secret_file.find("encrypted secret key"), std::string::npos);
  const auto k = minisign::parse_secret_key(g.secret_file, std::string("hunter2"), "k.key");
  EXPECT_EQ(k.sk, g.secret.sk);
  EXPECT_EQ(k.keynum, g.secret.keynum);
  test::expect_error([&] { minisign::parse_secret_key(g.secret_file, std::string("hunter3"), "k.key"); },
                     {"k.key: wrong password"});
  test::expect_error([&] { minisign::parse_secret_key(g.secret_file, std::nullopt, "k.key"); },
                     {"password-protected", "--password-file"});
}

TEST(Minisign, DebianMinisignVerifiesOurSignaturesAndKeys) {
  if (!fs::exists(kMinisign)) GTEST_SKIP() << "no " << kMinisign;
  test::TempDir tmp;
  const auto g = minisign::generate_key("");
  write_file_atomic(tmp / "k.pub", g.public_file);
  write_file_atomic(tmp / "k.key", g.secret_file);
  write_file_atomic(tmp / "m", "payload\n");
  write_file_atomic(tmp / "m.minisig", minisign::sign(g.secret, "payload\n", "tc firmware_id=sha256:00"));
  const std::string v = std::string(kMinisign) + " -V -H -p " + (tmp / "k.pub").string() + " -m " + (tmp / "m").string();
  EXPECT_EQ(sh(v), 0);
  write_file_atomic(tmp / "m", "payload!\n");
  EXPECT_NE(sh(v), 0);  // and it notices a change
  // minisign signs with our unencrypted secret key, and we verify that.
  write_file_atomic(tmp / "n", "other\n");
  ASSERT_EQ(sh(std::string(kMinisign) + " -S -s " + (tmp / "k.key").string() + " -m " + (tmp / "n").string() + " -t hello"), 0);
  const auto sig = minisign::parse_signature(test::slurp(tmp / "n.minisig"), "n.minisig");
  minisign::verify(g.secret.public_key(), sig, "other\n", "n.minisig");
  EXPECT_EQ(sig.trusted_comment, "hello");
}

TEST(Minisign, WeReadDebianMinisignKeysAndSignatures) {
  if (!fs::exists(kMinisign)) GTEST_SKIP() << "no " << kMinisign;
  test::TempDir tmp;
  const std::string pub = (tmp / "k.pub").string(), key = (tmp / "k.key").string(), m = (tmp / "m").string();
  ASSERT_EQ(sh(std::string(kMinisign) + " -G -W -p " + pub + " -s " + key), 0);
  write_file_atomic(m, "signed by minisign\n");
  ASSERT_EQ(sh(std::string(kMinisign) + " -S -H -s " + key + " -m " + m + " -t 'trusted words'"), 0);
  const auto p = minisign::read_public_key(pub);
  const auto sig = minisign::parse_signature(test::slurp(m + ".minisig"), "m.minisig");
  minisign::verify(p, sig, "signed by minisign\n", "m.minisig");
  EXPECT_EQ(sig.trusted_comment, "trusted words");
  // Its -W secret key signs for us too; minisign verifies the result.
  const auto sk = minisign::read_secret_key(key, std::nullopt);
  EXPECT_EQ(sk.public_key().key_id(), p.key_id());
  write_file_atomic(m + ".minisig", minisign::sign(sk, "signed by minisign\n", "ours"));
  EXPECT_EQ(sh(std::string(kMinisign) + " -V -H -p " + pub + " -m " + m), 0);
  // minisign -l (legacy) signatures are refused with their own message.
  ASSERT_EQ(sh(std::string(kMinisign) + " -S -l -s " + key + " -m " + m), 0);
  const auto legacy = minisign::parse_signature(test::slurp(m + ".minisig"), "m.minisig");
  test::expect_error([&] { minisign::verify(p, legacy, "signed by minisign\n", "m.minisig"); }, {"legacy non-prehashed"});
}

}  // namespace
}  // namespace m4
