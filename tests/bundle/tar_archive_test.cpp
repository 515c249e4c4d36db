// The ustar writer against GNU tar (an independent reader), and the strict
// reader against every malformed header the bundle reader must refuse.
#include "bundle/tar_archive.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/atomic_file.h"
#include "tests/support/cli_test.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

const std::map<std::string, uint64_t> kLimits = {{"a.txt", 1000}, {"b.bin", 1 << 20}};

std::string pad(std::string s) {
  if (s.size() % 512) s.append(512 - s.size() % 512, '\0');
  return s;
}
std::string entry(const std::string& name, const std::string& data, char type = '0', const std::string& link = "") {
  return tar_header(name, data.size(), 1700000000, type, link) + pad(data);
}
const std::string kEnd(1024, '\0');

TEST(TarArchive, WriterOutputIsReadByGnuTarAndByUs) {
  test::TempDir tmp;
  const fs::path out = tmp / "x.tar";
  std::string bin(1234, '\0');
  for (size_t i = 0; i < bin.size(); ++i) bin[i] = static_cast<char>(i * 7);
  {
    AtomicFileWriter w(out);
    TarWriter t(w, 1700000000);
    t.add("a.txt", "hello\n");
    t.add("b.bin", bin);
    t.finish();
    w.commit();
  }
  const std::string bytes = test::slurp(out);
  EXPECT_EQ(bytes.size(), 512 + 512 + 512 + 1536 + 1024u);
  const auto entries = read_tar(bytes, kLimits, "x.tar");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "a.txt");
  EXPECT_EQ(entries[0].data, "hello\n");
  EXPECT_EQ(entries[1].data, bin);

  // GNU tar lists both as regular 0644 files with the fixed mtime and extracts the same bytes.
  const std::string list = (tmp / "list").string();
  ASSERT_EQ(std::system(("tar --utc -tvf " + out.string() + " > " + list).c_str()), 0);
  const std::string l = test::slurp(list);
  EXPECT_NE(l.find("-rw-r--r-- root/root         6 2023-11-14 22:13 a.txt"), std::string::npos) << l;
  EXPECT_NE(l.find("1234 2023-11-14 22:13 b.bin"), std::string::npos) << l;
  fs::create_directory(tmp / "x");
  ASSERT_EQ(std::system(("tar -xf " + out.string() + " -C " + (tmp / "x").string()).c_str()), 0);
  EXPECT_EQ(test::slurp(tmp / "x" / "b.bin"), bin);
}

TEST(TarArchive, ReadsWhatGnuTarWritesInUstarFormat) {
  test::TempDir tmp;
  std::ofstream(tmp / "a.txt") << "from gnu tar";
  const fs::path out = tmp / "g.tar";
  ASSERT_EQ(std::system(("tar --format=ustar --owner=0 --group=0 -C " + tmp.path().string() + " -cf " + out.string() +
                         " a.txt").c_str()), 0);
  const std::string bytes = test::slurp(out);  // padded to a 10240-byte record with zeros
  const auto entries = read_tar(bytes, kLimits, "g.tar");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].data, "from gnu tar");
}

TEST(TarArchive, RefusesEveryHostileHeader) {
  const std::string ok = entry("a.txt", "hi");
  test::expect_error([&] { read_tar(ok + entry("c.txt", "x") + kEnd, kLimits, "t.tar"); },
                     {"t.tar: tar: unexpected entry 'c.txt'"});
  test::expect_error([&] { read_tar(ok + ok + kEnd, kLimits, "t.tar"); }, {"entry 'a.txt' appears twice"});
  test::expect_error([&] { read_tar(entry("b.bin", "", '2', "/etc/passwd") + kEnd, kLimits, "t.tar"); },
                     {"entry 'b.bin' is a symbolic link"});
  test::expect_error([&] { read_tar(entry("b.bin", "", '1', "a.txt") + kEnd, kLimits, "t.tar"); },
                     {"entry 'b.bin' is a hard link"});
  test::expect_error([&] { read_tar(entry("b.bin", "", '5') + kEnd, kLimits, "t.tar"); }, {"has type '5'"});
  test::expect_error([&] { read_tar(entry("/a.txt", "hi") + kEnd, kLimits, "t.tar"); }, {"'/a.txt' has an absolute path"});
  test::expect_error([&] { read_tar(entry("../a.txt", "hi") + kEnd, kLimits, "t.tar"); }, {"has a '..' path"});
  test::expect_error([&] { read_tar(entry("d/a.txt", "hi") + kEnd, kLimits, "t.tar"); }, {"has a path with '/'"});
  test::expect_error([&] { read_tar(entry("a.txt", std::string(1001, 'x')) + kEnd, kLimits, "t.tar"); },
                     {"claims 1001 bytes, over its limit of 1000"});
  // Truncated: inside the data, inside a header, before the end blocks, one end block.
  const std::string two = entry("b.bin", std::string(3000, 'y')) + kEnd;
  test::expect_error([&] { read_tar(two.substr(0, 2000), kLimits, "t.tar"); }, {"claims 3000 bytes but only 1488 follow"});
  test::expect_error([&] { read_tar(ok.substr(0, 300), kLimits, "t.tar"); }, {"truncated archive (partial header"});
  test::expect_error([&] { read_tar(ok, kLimits, "t.tar"); }, {"truncated archive (no end-of-archive blocks"});
  test::expect_error([&] { read_tar(ok + kEnd.substr(0, 512), kLimits, "t.tar"); }, {"one end-of-archive block of two"});
  test::expect_error([&] { read_tar(ok + kEnd + "x", kLimits, "t.tar"); }, {"non-zero bytes after the end-of-archive"});
  // Padding is covered by no digest, so it must be zeros.
  std::string padded = ok + kEnd;
  padded[512 + 100] = 'x';
  test::expect_error([&] { read_tar(padded, kLimits, "t.tar"); }, {"entry 'a.txt' has non-zero padding"});
  // A flipped header byte breaks the checksum; a right checksum on a non-ustar header is still refused.
  std::string bad = ok + kEnd;
  bad[10] ^= 1;
  test::expect_error([&] { read_tar(bad, kLimits, "t.tar"); }, {"header checksum mismatch at offset 0"});
  std::string v7 = tar_header("a.txt", 2, 0);
  v7.replace(257, 8, 8, '\0');
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(v7[i]);
  char s[8];
  std::snprintf(s, sizeof s, "%06o", sum);
  v7.replace(148, 6, s, 6);
  test::expect_error([&] { read_tar(v7 + pad("hi") + kEnd, kLimits, "t.tar"); }, {"is not POSIX ustar"});
}

TEST(TarArchive, HugeSizeClaimsAreRefusedWithoutAllocating) {
  // 10 GB in a full-width 12-digit octal field, and 2^62 in GNU base-256.
  for (const std::string field : {std::string("112402762000"), std::string("\x80\0\0\0\x40\0\0\0\0\0\0\0", 12)}) {
    std::string h = tar_header("b.bin", 0, 0);
    h.replace(124, 12, field);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    char s[8];
    std::snprintf(s, sizeof s, "%06o", sum);
    h.replace(148, 6, s, 6);
    test::expect_error([&] { read_tar(h + kEnd, kLimits, "t.tar"); }, {"entry 'b.bin' claims", "over its limit of 1048576"});
  }
}

}  // namespace
}  // namespace m4
