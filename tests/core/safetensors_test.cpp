// Tests for the safetensors reader/writer (core/safetensors.h): round trips
// of every dtype, zero-copy read-only mapping, atomic replacement, one test per
// malformed-input path (code, file name and problem in a one-line message), and
// a Hugging Face-written reference file decoded independently with Python.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "tests/support/test_util.h"

// ---------------------------------------------------------------------------
// Allocation probe. The header-length checks must run before anything is sized
// from the claimed length; the only way to prove "did not allocate 100 MB" is to
// watch every allocation. operator new is replaced for the whole test binary
// with a malloc-backed version (what libstdc++ does) that, while a probe is
// armed, records the largest single request.
namespace {
std::atomic<bool> g_probe_armed{false};
std::atomic<size_t> g_probe_largest{0};
}  // namespace

// GCC pairs inlined `new T` with this free() and warns; malloc/free is the pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  if (g_probe_armed.load(std::memory_order_relaxed)) {
    size_t prev = g_probe_largest.load(std::memory_order_relaxed);
    while (n > prev && !g_probe_largest.compare_exchange_weak(prev, n)) {
    }
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

namespace fs = std::filesystem;
using m4::ErrorCode;

// Opens `path` with the probe armed: whether it threw m4::Error(kBadInput), and
// the largest single operator-new request made meanwhile.
struct ProbedOpen {
  bool rejected = false;
  size_t largest = 0;
};
ProbedOpen open_with_probe(const fs::path& path) {
  ProbedOpen r;
  g_probe_largest = 0;
  g_probe_armed = true;
  try {
    m4::SafetensorsFile::open(path);
  } catch (const m4::Error& e) {
    r.rejected = e.code() == ErrorCode::kBadInput;
  } catch (...) {
  }
  g_probe_armed = false;
  r.largest = g_probe_largest;
  return r;
}

// ---------------------------------------------------------------------------
// Byte-level file builders: every malformed file below is spelled out with these.

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// u64 little-endian length of `header`, the header bytes, then `data`.
std::string file_of(std::string_view header, std::string_view data = {}) {
  return le64(header.size()) + std::string(header) + std::string(data);
}

std::string zeros(size_t n) { return std::string(n, '\0'); }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

uint64_t header_length_of(const std::string& file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);
  return n;
}

// Runs `f`, which must throw m4::Error with `code` and a one-line message that
// contains every string in `parts` (normally the file path and the problem).
template <typename F>
testing::AssertionResult throws_m4(F&& f, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const m4::Error& e) {
    const std::string msg = e.what();
    if (e.code() != code) {
      return testing::AssertionFailure() << "code " << static_cast<int>(e.code()) << " instead of "
                                         << static_cast<int>(code) << "; message: " << msg;
    }
    if (msg.find('\n') != std::string::npos || msg.find('\r') != std::string::npos) {
      return testing::AssertionFailure() << "message spans several lines: " << msg;
    }
    for (const auto& p : parts) {
      if (msg.find(p) == std::string::npos) {
        return testing::AssertionFailure() << "message lacks \"" << p << "\": " << msg;
      }
    }
    return testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return testing::AssertionFailure() << "threw a non-m4 exception: " << e.what();
  } catch (...) {
    return testing::AssertionFailure() << "threw something that is not a std::exception";
  }
  return testing::AssertionFailure() << "did not throw";
}

testing::AssertionResult open_rejects(const fs::path& path, const std::string& phrase) {
  return throws_m4([&] { m4::SafetensorsFile::open(path); }, ErrorCode::kBadInput,
                   {path.string(), phrase});
}

bool inside_mapping(const m4::SafetensorsFile& f, const void* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return b >= f.mapping()->data() && b < f.mapping()->data() + f.mapping()->size();
}

// The permission field ("r--p", ...) of the /proc/self/maps line holding `p`.
std::string mapping_permissions(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= addr && addr < hi) {
      return perms;
    }
  }
  return "";
}

std::vector<std::string> names_of(const m4::SafetensorsFile& f) {
  std::vector<std::string> out;
  for (const auto& t : f.tensors()) out.push_back(t.name);
  return out;
}

// A fresh directory per test, removed afterwards; seeds fixed.
class SafetensorsTestBase : public testing::Test {
 protected:
  void SetUp() override {
    at::manual_seed(0);
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("m4_safetensors_") + info->test_suite_name() + "_" + info->name() +
                       "_" + std::to_string(::getpid());
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::path(testing::TempDir()) / name;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write_raw(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    EXPECT_TRUE(out.good()) << p;
    return p;
  }

  std::vector<std::string> dir_entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

// ---------------------------------------------------------------------------
// Round trip

class SafetensorsRoundTrip : public SafetensorsTestBase {};

TEST_F(SafetensorsRoundTrip, EveryDtypeLayoutAndMetadataSurvivesBitExact) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  m4::NamedTensors in = {
      {"f64", at::randn({2, 3}, at::kDouble)},
      // Specials compared bit for bit: -0, infinities, NaN, a denormal, extremes.
      {"f32.special",
       at::tensor(std::vector<float>{0.0f, -0.0f, inf, -inf, nan, 1e-45f,
                                     std::numeric_limits<float>::max(), 1.5f})},
      {"f16", at::randn({4, 4}).to(at::kHalf)},
      {"bf16.transposed", at::randn({3, 5}).to(at::kBFloat16).t()},
      {"i64", at::tensor(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0, 1,
                                              std::numeric_limits<int64_t>::max()})},
      {"i32", at::randint(-100000, 100000, {7}, at::kInt)},
      {"i16", at::randint(-32768, 32767, {2, 2, 2}, at::kShort)},
      {"i8", at::randint(-128, 127, {5}, at::kChar)},
      {"u8.transposed", at::arange(256, at::kByte).reshape({16, 16}).t()},
      {"bool", at::randint(0, 2, {9}).to(at::kBool)},
      {"f32.transposed", at::randn({3, 5}).t()},
      {"f32.every_third", at::randn({10}).slice(0, 0, 10, 3)},
      {"i64.expanded", at::tensor(std::vector<int64_t>{1, 2, 3}).expand({4, 3})},
      {"f32.empty", at::empty({0, 3})},
      {"f64.scalar", at::scalar_tensor(3.25, at::kDouble)},
      {"u8.empty", at::empty({0}, at::kByte)},
      {"i32.last", at::randint(-5, 5, {3}, at::kInt)},
  };
  ASSERT_FALSE(in[3].second.is_contiguous());
  ASSERT_FALSE(in[11].second.is_contiguous());
  ASSERT_EQ(in[14].second.dim(), 0);
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"escapes", "line1\nline2 \"quoted\" back\\slash\ttab"},
      {"unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac"},
      {"empty", ""},
      {"", "empty key"},
  };
  const fs::path path = dir_ / "all.safetensors";
  m4::write_safetensors(path, in, metadata);

  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.metadata(), metadata);
  ASSERT_EQ(f.tensors().size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& [name, src] = in[i];
    SCOPED_TRACE(name);
    const m4::TensorInfo& info = f.tensors()[i];  // sorted by offset = written order
    EXPECT_EQ(info.name, name);
    ASSERT_TRUE(f.contains(name));
    EXPECT_EQ(f.find(name), &info);
    EXPECT_EQ(info.dtype, m4::from_scalar_type(src.scalar_type()));
    EXPECT_EQ(info.shape, src.sizes().vec());
    EXPECT_EQ(info.nbytes(), static_cast<uint64_t>(src.numel()) * src.element_size());

    const at::Tensor out = f.tensor(name);
    EXPECT_EQ(out.scalar_type(), src.scalar_type());
    EXPECT_EQ(out.sizes(), src.sizes());
    EXPECT_TRUE(out.is_contiguous());
    EXPECT_TRUE(out.device().is_cpu());
    const at::Tensor want = src.contiguous();
    ASSERT_EQ(f.bytes(info).size(), info.nbytes());
    EXPECT_EQ(std::memcmp(f.bytes(info).data(), want.data_ptr(), info.nbytes()), 0);
    if (out.numel() > 0) {
      EXPECT_EQ(std::memcmp(out.data_ptr(), want.data_ptr(), info.nbytes()), 0);
    }
    if (name != "f32.special") {
      EXPECT_TRUE(at::equal(out, src));  // NaN != NaN
    }
  }
  EXPECT_FALSE(f.contains("missing"));
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST_F(SafetensorsRoundTrip, NoTensorsAndNoMetadata) {
  const fs::path path = dir_ / "empty.safetensors";
  m4::write_safetensors(path, {});
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(read_bytes(path).substr(8, 2), "{}");
}

// ---------------------------------------------------------------------------
// Layout of written files: aligned header, zero-copy, read-only mapping

class SafetensorsLayout : public SafetensorsTestBase {};

TEST_F(SafetensorsLayout, HeaderIsPaddedTo8BytesAndTensorsPointIntoTheMapping) {
  // Names of length 1..8 give headers of every length mod 8 before padding.
  for (size_t len = 1; len <= 8; ++len) {
    const std::string p(len, 'p');
    SCOPED_TRACE("name length " + std::to_string(len));
    // Every tensor is a multiple of 8 bytes, so each one starts 8-byte aligned.
    m4::NamedTensors in = {
        {p + "f64", at::randn({3}, at::kDouble)},
        {p + "f32", at::randn({2})},
        {p + "f16", at::randn({4}).to(at::kHalf)},
        {p + "bf16", at::randn({4}).to(at::kBFloat16)},
        {p + "i64", at::randint(-9, 9, {1}, at::kLong)},
        {p + "i32", at::randint(-9, 9, {2}, at::kInt)},
        {p + "i16", at::randint(-9, 9, {4}, at::kShort)},
        {p + "i8", at::randint(-9, 9, {8}, at::kChar)},
        {p + "u8", at::randint(0, 9, {8}, at::kByte)},
        {p + "bool", at::randint(0, 2, {8}).to(at::kBool)},
        {p + "empty", at::empty({0, 2})},
    };
    const fs::path path = dir_ / ("aligned" + std::to_string(len) + ".safetensors");
    m4::write_safetensors(path, in, {{"k", std::string(len, 'v')}});

    const std::string raw = read_bytes(path);
    const uint64_t n = header_length_of(raw);
    EXPECT_EQ((8 + n) % 8, 0u) << "header length " << n;
    ASSERT_LE(8 + n, raw.size());
    const std::string header = raw.substr(8, n);
    const size_t last = header.find_last_not_of(' ');
    ASSERT_NE(last, std::string::npos);
    EXPECT_EQ(header[last], '}');
    EXPECT_LT(n - 1 - last, 8u) << "more padding than alignment needs";

    const auto f = m4::SafetensorsFile::open(path);
    EXPECT_EQ(f.mapping()->size(), raw.size());
    uint64_t data_bytes = 0;
    for (const auto& [name, src] : in) {
      SCOPED_TRACE(name);
      const m4::TensorInfo* info = f.find(name);
      ASSERT_NE(info, nullptr);
      data_bytes += info->nbytes();
      const at::Tensor t = f.tensor(name);
      EXPECT_TRUE(at::equal(t, src));
      if (t.numel() == 0) continue;
      EXPECT_TRUE(inside_mapping(f, t.data_ptr())) << "tensor was copied";
      EXPECT_EQ(t.data_ptr(), f.mapping()->data() + 8 + n + info->begin);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 8, 0u);
    }
    EXPECT_EQ(raw.size(), 8 + n + data_bytes);
  }
}

TEST_F(SafetensorsLayout, TensorsPointIntoAReadOnlyMapping) {
  const fs::path path = dir_ / "ro.safetensors";
  m4::write_safetensors(path, {{"w", at::arange(16, at::kFloat)}});
  const auto f = m4::SafetensorsFile::open(path);
  const at::Tensor t = f.tensor("w");
  ASSERT_TRUE(inside_mapping(f, t.data_ptr()));
  const std::string perms = mapping_permissions(t.data_ptr());
  ASSERT_EQ(perms.size(), 4u) << "address not found in /proc/self/maps";
  EXPECT_EQ(perms[0], 'r') << perms;
  EXPECT_EQ(perms[1], '-') << perms << ": the mapping is writable";

  // A store into it must fault. The child only performs the store and _exit
  // (async-signal-safe), so forking a threaded process is fine.
  auto* p = static_cast<volatile float*>(t.data_ptr());
  fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    p[3] = 42.0f;
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writing through the tensor did not fault";
  EXPECT_TRUE(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS) << WTERMSIG(status);
  EXPECT_EQ(t[3].item<float>(), 3.0f);
}

TEST_F(SafetensorsLayout, TensorKeepsTheMappingAliveAfterTheFileObjectIsGone) {
  const fs::path path = dir_ / "alive.safetensors";
  const at::Tensor want = at::randn({5, 7});
  m4::write_safetensors(path, {{"w", want}});
  at::Tensor t;
  std::weak_ptr<const m4::MappedFile> mapping;
  {
    const auto f = m4::SafetensorsFile::open(path);
    t = f.tensor("w").slice(0, 1, 4);  // a view keeps the storage, too
    mapping = f.mapping();
  }
  fs::remove(path);  // the mapping must not need the name either
  ASSERT_FALSE(mapping.expired());
  EXPECT_TRUE(at::equal(t, want.slice(0, 1, 4)));
  EXPECT_EQ(t.sum().item<float>(), want.slice(0, 1, 4).sum().item<float>());
  t.reset();
  EXPECT_TRUE(mapping.expired()) << "the last tensor's deleter did not release the mapping";
}

TEST_F(SafetensorsLayout, MisalignedTensorInAForeignFileIsCopiedWithCorrectValues) {
  // Legal in the format though neither we nor HF write it: an F32 at data
  // offset 1. Header padded so the data area itself starts 8-byte aligned.
  std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const fs::path path = write_raw("misaligned.safetensors",
                                  file_of(header, std::string("\x07\x00\x00\xc0\x3f", 5)));
  const auto f = m4::SafetensorsFile::open(path);
  const at::Tensor b = f.tensor("b");
  EXPECT_EQ(b.item<float>(), 1.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data_ptr()) % 4, 0u);
  EXPECT_FALSE(inside_mapping(f, b.data_ptr()));
  EXPECT_EQ(f.tensor("a").item<uint8_t>(), 7);
  EXPECT_TRUE(inside_mapping(f, f.tensor("a").data_ptr()));
}

// ---------------------------------------------------------------------------
// Writer: atomic replacement and argument checks

class SafetensorsWriter : public SafetensorsTestBase {};

TEST_F(SafetensorsWriter, ReplacesAnExistingFileAtomicallyAndLeavesNoTempFiles) {
  const fs::path path = dir_ / "model.safetensors";
  m4::write_safetensors(path, {{"x", at::arange(4, at::kFloat)}}, {{"v", "1"}});
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.safetensors"});
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);

  const auto old_file = m4::SafetensorsFile::open(path);
  const at::Tensor old_x = old_file.tensor("x");

  m4::write_safetensors(path, {{"y", at::ones({3}, at::kLong)}}, {{"v", "2"}});
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.safetensors"});
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino) << "rewritten in place rather than renamed over";

  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_EQ(names_of(f), std::vector<std::string>{"y"});
  EXPECT_EQ(f.metadata().at("v"), "2");
  EXPECT_TRUE(at::equal(f.tensor("y"), at::ones({3}, at::kLong)));
  // Whoever had the old file open still sees the old, complete content.
  EXPECT_TRUE(at::equal(old_x, at::arange(4, at::kFloat)));
  EXPECT_EQ(old_file.metadata().at("v"), "1");

  // A rejected write leaves the existing file untouched and no temp file.
  EXPECT_THROW(m4::write_safetensors(path, {{"z", at::ones({1})}, {"z", at::ones({1})}}), m4::Error);
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(names_of(m4::SafetensorsFile::open(path)), std::vector<std::string>{"y"});
}

TEST_F(SafetensorsWriter, RejectsDuplicateNames) {
  const fs::path path = dir_ / "dup.safetensors";
  EXPECT_TRUE(throws_m4(
      [&] { m4::write_safetensors(path, {{"w", at::ones({2})}, {"b", at::ones({1})}, {"w", at::zeros({2})}}); },
      ErrorCode::kInvalidArgument, {path.string(), "tensor 'w' given twice"}));
  EXPECT_TRUE(dir_entries().empty());
}

TEST_F(SafetensorsWriter, RejectsTheReservedMetadataName) {
  const fs::path path = dir_ / "reserved.safetensors";
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"__metadata__", at::ones({2})}}); },
                        ErrorCode::kInvalidArgument,
                        {path.string(), "'__metadata__' cannot name a tensor"}));
  // Also when real metadata is present (the key is then in the header object).
  EXPECT_TRUE(throws_m4(
      [&] { m4::write_safetensors(path, {{"__metadata__", at::ones({2})}}, {{"format", "pt"}}); },
      ErrorCode::kInvalidArgument, {path.string(), "'__metadata__' cannot name a tensor"}));
  EXPECT_TRUE(dir_entries().empty());
}

TEST_F(SafetensorsWriter, RejectsUndefinedAndUnsupportedTensors) {
  const fs::path path = dir_ / "bad.safetensors";
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"u", at::Tensor()}}); },
                        ErrorCode::kInvalidArgument,
                        {path.string(), "tensor 'u' must be a defined CPU or CUDA tensor"}));
  // A tensor with no bytes to copy (the meta device) is refused the same way.
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"m", at::empty({2}, at::kMeta)}}); },
                        ErrorCode::kInvalidArgument, {path.string(), "tensor 'm' must be a defined CPU or CUDA tensor"}));
  // The message for an unsupported dtype does not name the file or tensor
  // (see from_scalar_type); only its code and problem are checked here.
  EXPECT_TRUE(throws_m4(
      [&] { m4::write_safetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}}); },
      ErrorCode::kInvalidArgument, {"cannot be stored in safetensors"}));
  EXPECT_TRUE(dir_entries().empty());
}

TEST_F(SafetensorsWriter, FailsWithIoErrorWhenTheDirectoryIsMissing) {
  const fs::path path = dir_ / "no" / "such" / "dir.safetensors";
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"w", at::ones({2})}}); },
                        ErrorCode::kIo, {path.string(), "cannot create temporary file"}));
}

// ---------------------------------------------------------------------------
// Reader: files that must open

class SafetensorsValidEdge : public SafetensorsTestBase {};

TEST_F(SafetensorsValidEdge, HeaderPaddedWithTrailingSpaces) {
  const fs::path path = write_raw(
      "padded.safetensors",
      file_of(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})" + std::string(11, ' '),
              "\x05\x06"));
  const auto f = m4::SafetensorsFile::open(path);
  ASSERT_EQ(names_of(f), std::vector<std::string>{"a"});
  EXPECT_TRUE(at::equal(f.tensor("a"), at::tensor(std::vector<uint8_t>{5, 6})));
}

TEST_F(SafetensorsValidEdge, EmptyHeaderObjectWithNoData) {
  const fs::path path = write_raw("empty.safetensors", file_of("{}"));
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(SafetensorsValidEdge, OnlyMetadata) {
  const fs::path path =
      write_raw("meta.safetensors", file_of(R"({"__metadata__":{"format":"pt","k":""}})"));
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"k", ""}}));
}

TEST_F(SafetensorsValidEdge, ZeroSizeTensorAtTheEnd) {
  const fs::path path = write_raw(
      "zero_end.safetensors",
      file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
              R"("z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}})",
              "\x01\x02\x03\x04"));
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_EQ(names_of(f), (std::vector<std::string>{"a", "z"}));
  const at::Tensor z = f.tensor("z");
  EXPECT_EQ(z.sizes(), (at::IntArrayRef{0, 3}));
  EXPECT_EQ(z.scalar_type(), at::kFloat);
  EXPECT_EQ(f.bytes(*f.find("z")).size(), 0u);
  EXPECT_TRUE(at::equal(f.tensor("a"), at::tensor(std::vector<uint8_t>{1, 2, 3, 4})));
}

TEST_F(SafetensorsValidEdge, HeaderOrderDoesNotMatterAndTensorsAreSortedByOffset) {
  const fs::path path = write_raw(
      "unordered.safetensors",
      file_of(R"({"c":{"dtype":"I16","shape":[1],"data_offsets":[4,6]},)"
              R"("z":{"dtype":"BOOL","shape":[0],"data_offsets":[0,0]},)"
              R"("__metadata__":{},)"
              R"("a":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]}})",
              std::string("\x01\x00\x01\x01\xff\x7f", 6)));
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_EQ(names_of(f), (std::vector<std::string>{"z", "a", "c"}));
  EXPECT_EQ(f.tensor("c").item<int16_t>(), 32767);
  EXPECT_TRUE(at::equal(f.tensor("a"), at::tensor(std::vector<uint8_t>{1, 0, 1, 1}).reshape({2, 2})));
}

TEST_F(SafetensorsValidEdge, ScalarWithEmptyShape) {
  const fs::path path = write_raw(
      "scalar.safetensors",
      file_of(R"({"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})", std::string("\xfe\xff\xff\xff", 4)));
  const at::Tensor s = m4::SafetensorsFile::open(path).tensor("s");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<int32_t>(), -2);
}

// ---------------------------------------------------------------------------
// Reader: lookups and files that cannot be opened at all

class SafetensorsLookup : public SafetensorsTestBase {};

TEST_F(SafetensorsLookup, MissingTensorNameIsAMismatch) {
  const fs::path path = dir_ / "one.safetensors";
  m4::write_safetensors(path, {{"present", at::ones({1})}});
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_TRUE(throws_m4([&] { f.tensor("absent"); }, ErrorCode::kMismatch,
                        {path.string(), "no tensor named 'absent'"}));
}

TEST_F(SafetensorsLookup, MissingFileOrDirectoryIsAnIoError) {
  const fs::path missing = dir_ / "missing.safetensors";
  EXPECT_TRUE(throws_m4([&] { m4::SafetensorsFile::open(missing); }, ErrorCode::kIo,
                        {missing.string(), "cannot open"}));
  EXPECT_TRUE(throws_m4([&] { m4::SafetensorsFile::open(dir_); }, ErrorCode::kIo,
                        {dir_.string(), "not a regular file"}));
}

// ---------------------------------------------------------------------------
// Reader: every malformed file, one case each

struct MalformedCase {
  const char* name;
  std::string file;    // the exact bytes on disk
  std::string phrase;  // what the message must say besides the path
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

// `a`: a valid 4-byte U8 tensor entry at offset 0, for cases about something else.
const char* const kEntryA = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";

std::vector<MalformedCase> malformed_cases() {
  const std::string a = kEntryA;
  return {
      // The 8-byte length prefix.
      {"EmptyFile", "", "file is 0 bytes, too short for a safetensors header"},
      {"SevenBytes", std::string(7, '\0'), "file is 7 bytes, too short"},
      {"HeaderLengthOverLimit", le64(100000001) + std::string(8, ' '),
       "header length 100000001 exceeds the 100 MB limit"},
      {"HeaderLength2Pow63", le64(uint64_t{1} << 63) + "{}      ",
       "header length 9223372036854775808 exceeds the 100 MB limit"},
      {"HeaderLengthAllOnes", le64(~uint64_t{0}) + "{}      ", "exceeds the 100 MB limit"},
      {"HeaderPastEof", le64(3) + "{}", "header length 3 reaches past the end of the file (10 bytes)"},
      {"HeaderAtLimitPastEof", le64(100000000) + "{}      ",
       "header length 100000000 reaches past the end of the file (16 bytes)"},
      // Encoding and JSON syntax.
      {"InvalidUtf8Byte", file_of("{\"\xff\":1}"), "header is not valid UTF-8 (byte 2 of the header)"},
      {"InvalidUtf8InMetadataValue", file_of("{\"__metadata__\":{\"k\":\"\xff\"}}"),
       "header is not valid UTF-8 (byte 22 of the header)"},
      {"OverlongUtf8", file_of("{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}"),
       "header is not valid UTF-8 (byte 22"},
      {"Utf8Surrogate", file_of("{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}"), "not valid UTF-8"},
      {"Utf8AboveU10FFFF", file_of("{\"__metadata__\":{\"k\":\"\xf4\x90\x80\x80\"}}"), "not valid UTF-8"},
      {"TruncatedUtf8", file_of("{}   \xe2\x82"), "header is not valid UTF-8 (byte 5"},
      {"EmptyHeader", file_of(""), "header is not valid JSON"},
      {"NotJson", file_of("hello"), "header is not valid JSON"},
      {"TrailingGarbage", file_of("{} x"), "header is not valid JSON"},
      {"UnterminatedObject", file_of(R"({"a":)"), "header is not valid JSON"},
      {"JsonArray", file_of("[]"), "header must be a JSON object, found array"},
      {"JsonNumber", file_of("42"), "header must be a JSON object, found number"},
      {"JsonString", file_of(R"("x")"), "header must be a JSON object, found string"},
      {"JsonNull", file_of("null"), "header must be a JSON object, found null"},
      // Hostile nesting: rejected by depth, never recursed into.
      {"DeepArrays", file_of(std::string(100000, '[')), "nests deeper than any valid header"},
      {"DeepBalancedArrays", file_of(std::string(100000, '[') + std::string(100000, ']')),
       "nests deeper than any valid header"},
      {"DeepObjects",
       [] {
         std::string s;
         for (int i = 0; i < 100000; ++i) s += R"({"a":)";
         return file_of(s);
       }(),
       "nests deeper than any valid header"},
      {"DeepInsideMetadata", file_of(R"({"__metadata__":{"k":)" + std::string(100000, '[')),
       "nests deeper than any valid header"},
      // Header structure.
      {"DuplicateTensorName", file_of("{" + a + "," + a + "}", zeros(4)),
       "tensor 'a' appears twice in the safetensors header"},
      {"DuplicateMetadata", file_of(R"({"__metadata__":{},"__metadata__":{}})"),
       "tensor '__metadata__' appears twice"},
      {"MetadataValueNumber", file_of(R"({"__metadata__":{"k":1}})"),
       "__metadata__ value 'k' is a number, but metadata values must be strings"},
      {"MetadataValueObject", file_of(R"({"__metadata__":{"k":{"x":"y"}}})"),
       "__metadata__ value 'k' is a object"},
      {"MetadataValueNull", file_of(R"({"__metadata__":{"k":null}})"), "__metadata__ value 'k' is a null"},
      {"MetadataNotObjectString", file_of(R"({"__metadata__":"pt"})"),
       "__metadata__ must be an object of strings, found string"},
      {"MetadataNotObjectArray", file_of(R"({"__metadata__":["pt"]})"),
       "__metadata__ must be an object of strings, found array"},
      {"EntryNotObject", file_of(R"({"a":[0,4]})", zeros(4)), "tensor 'a': entry must be an object, found array"},
      {"MissingDtype", file_of(R"({"a":{"shape":[4],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': missing string field 'dtype'"},
      {"DtypeNotString", file_of(R"({"a":{"dtype":1,"shape":[4],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': missing string field 'dtype'"},
      {"MissingShape", file_of(R"({"a":{"dtype":"U8","data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': missing array field 'shape'"},
      {"ShapeNotArray", file_of(R"({"a":{"dtype":"U8","shape":4,"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': missing array field 'shape'"},
      {"MissingDataOffsets", file_of(R"({"a":{"dtype":"U8","shape":[4]}})", zeros(4)),
       "tensor 'a': missing array field 'data_offsets'"},
      {"UnknownField",
       file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"extra":1}})", zeros(4)),
       "tensor 'a': unknown field 'extra'"},
      {"UnknownDtypeF8", file_of(R"({"a":{"dtype":"F8","shape":[4],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': unknown dtype 'F8'"},
      {"UnknownDtypeQ4", file_of(R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': unknown dtype 'Q4'"},
      {"LowercaseDtype", file_of(R"({"a":{"dtype":"u8","shape":[4],"data_offsets":[0,4]}})", zeros(4)),
       "unknown dtype 'u8'"},
      // Shapes.
      {"NegativeShape", file_of(R"({"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': shape [-1,4] must hold non-negative integers"},
      {"FractionalShape", file_of(R"({"a":{"dtype":"U8","shape":[2.5],"data_offsets":[0,4]}})", zeros(4)),
       "must hold non-negative integers"},
      {"StringShape", file_of(R"({"a":{"dtype":"U8","shape":["4"],"data_offsets":[0,4]}})", zeros(4)),
       "must hold non-negative integers"},
      {"ShapeProductOverflow",
       file_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", zeros(4)),
       "tensor 'a': shape [4294967296,4294967296,16] x F32 overflows 64 bits"},
      {"ShapeTimesDtypeOverflow",
       file_of(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})", zeros(4)),
       "overflows 64 bits"},
      {"ShapeEntryAboveInt64",
       file_of(R"({"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,4]}})", zeros(4)),
       "overflows 64 bits"},
      {"ShapeByteCountMismatch", file_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8)),
       "tensor 'a': shape [3] x F32 is 12 bytes but data_offsets [0,8] span 8"},
      // Offsets.
      {"ThreeDataOffsets", file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,2,4]}})", zeros(4)),
       "tensor 'a': data_offsets [0,2,4] must be two non-negative integers"},
      {"OneDataOffset", file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4]}})", zeros(4)),
       "data_offsets [4] must be two non-negative integers"},
      {"NegativeDataOffset", file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[-1,3]}})", zeros(4)),
       "must be two non-negative integers"},
      {"DataOffsetAboveUint64",
       file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,18446744073709551616]}})", zeros(4)),
       "must be two non-negative integers"},
      {"InvertedOffsets", file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,0]}})", zeros(4)),
       "tensor 'a': data_offsets [4,0] are inverted (end < begin)"},
      {"OffsetsPastEnd", file_of(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", zeros(4)),
       "tensor 'a': data_offsets [0,8] reach past the end of the data (4 bytes)"},
      {"OffsetsAtUint64Max",
       file_of(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})",
               zeros(4)),
       "reach past the end of the data (4 bytes)"},
      {"OffsetsNotStartingAtZero", file_of(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", zeros(8)),
       "tensor data does not start at offset 0 (first tensor 'a' starts at 4)"},
      {"GapBetweenTensors",
       file_of("{" + a + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})", zeros(10)),
       "gap of 2 bytes between tensors 'a' and 'b'"},
      {"OverlappingTensors",
       file_of("{" + a + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", zeros(6)),
       "tensors 'a' and 'b' overlap"},
      {"SameOffsetsTwice",
       file_of("{" + a + R"(,"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", zeros(4)), "overlap"},
      {"ZeroSizeTensorInsideAnother",
       file_of("{" + a + R"(,"z":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})", zeros(4)),
       "tensors 'a' and 'z' overlap"},
      {"TrailingBytesAfterLastTensor", file_of("{" + a + "}", zeros(6)), "2 trailing bytes after the last tensor"},
      {"TrailingBytesWithNoTensors", file_of("{}", zeros(3)), "3 trailing bytes after the last tensor"},
  };
}

class SafetensorsMalformed : public SafetensorsTestBase,
                             public testing::WithParamInterface<MalformedCase> {};

TEST_P(SafetensorsMalformed, OpenRejectsWithPathAndProblem) {
  const MalformedCase& c = GetParam();
  const fs::path path = write_raw(std::string(c.name) + ".safetensors", c.file);
  ASSERT_EQ(fs::file_size(path), c.file.size());
  EXPECT_TRUE(open_rejects(path, c.phrase));
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsMalformed, testing::ValuesIn(malformed_cases()),
                         [](const testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

class SafetensorsHeaderLength : public SafetensorsTestBase {};

TEST_F(SafetensorsHeaderLength, HugeClaimedLengthsFailWithoutAllocating) {
  for (uint64_t n : {uint64_t{100000001}, uint64_t{100000000}, uint64_t{1} << 63, ~uint64_t{0}}) {
    SCOPED_TRACE(n);
    const fs::path path = write_raw("huge.safetensors", le64(n) + "{}      ");  // 16 bytes
    const ProbedOpen r = open_with_probe(path);
    EXPECT_TRUE(r.rejected);
    EXPECT_LT(r.largest, size_t{64} << 10) << "open() allocated " << r.largest << " bytes at once";
    EXPECT_GT(r.largest, 0u) << "the probe saw nothing; is operator new replaced?";
  }
}

TEST_F(SafetensorsHeaderLength, DeepNestingFailsWithoutLargeAllocations) {
  const fs::path path = write_raw("deep.safetensors", file_of(std::string(1000000, '[')));
  const ProbedOpen r = open_with_probe(path);
  EXPECT_TRUE(r.rejected);
  EXPECT_LT(r.largest, size_t{64} << 10) << "open() allocated " << r.largest << " bytes at once";
}

// ---------------------------------------------------------------------------
// parse_safetensors_header on a string (the fuzzing surface)

TEST(SafetensorsParseHeader, ParsesEntriesSortsByOffsetAndReadsMetadata) {
  const std::string text =
      R"({"w2":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]},)"
      R"("__metadata__":{"format":"pt"},)"
      R"("w1":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}  )";
  const m4::SafetensorsHeader h = m4::parse_safetensors_header(text, 16, "mem");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "w1");
  EXPECT_EQ(h.tensors[0].dtype, m4::DType::kI64);
  EXPECT_EQ(h.tensors[0].shape, std::vector<int64_t>{1});
  EXPECT_EQ(h.tensors[1].name, "w2");
  EXPECT_EQ(h.tensors[1].dtype, m4::DType::kBF16);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(h.tensors[1].begin, 8u);
  EXPECT_EQ(h.tensors[1].end, 16u);
  EXPECT_EQ(h.tensors[1].nbytes(), 8u);
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(SafetensorsParseHeader, ChecksAgainstTheGivenDataSizeAndNamesWhere) {
  const std::string text = std::string("{") + kEntryA + "}";
  EXPECT_EQ(m4::parse_safetensors_header(text, 4, "mem").tensors.size(), 1u);
  EXPECT_TRUE(throws_m4([&] { m4::parse_safetensors_header(text, 5, "<buffer 7>"); }, ErrorCode::kBadInput,
                        {"<buffer 7>", "1 trailing bytes after the last tensor"}));
  EXPECT_TRUE(throws_m4([&] { m4::parse_safetensors_header(text, 3, "<buffer 7>"); }, ErrorCode::kBadInput,
                        {"<buffer 7>", "reach past the end of the data (3 bytes)"}));
  EXPECT_TRUE(throws_m4([&] { m4::parse_safetensors_header(std::string_view(), 0, "<empty>"); },
                        ErrorCode::kBadInput, {"<empty>", "not valid JSON"}));
  // Only the given view is parsed, not whatever follows it in memory.
  const std::string longer = "{}{}";
  EXPECT_TRUE(m4::parse_safetensors_header(std::string_view(longer).substr(0, 2), 0, "mem").tensors.empty());
}

// ---------------------------------------------------------------------------
// The dtype table shared by reader and writer

TEST(SafetensorsDType, NamesSizesAndScalarTypesAgree) {
  const std::vector<std::pair<const char*, at::ScalarType>> table = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool},
  };
  for (const auto& [name, scalar] : table) {
    SCOPED_TRACE(name);
    const auto d = m4::dtype_from_name(name);
    ASSERT_TRUE(d.has_value());
    EXPECT_STREQ(m4::dtype_name(*d), name);
    EXPECT_EQ(m4::to_scalar_type(*d), scalar);
    EXPECT_EQ(m4::from_scalar_type(scalar), *d);
    EXPECT_EQ(m4::dtype_size(*d), c10::elementSize(scalar));
  }
  for (const char* bad : {"", "f32", "F8", "Q4", "U16", "F32 ", "BOOL "}) {
    EXPECT_FALSE(m4::dtype_from_name(bad).has_value()) << bad;
  }
  EXPECT_TRUE(throws_m4([] { m4::from_scalar_type(at::kComplexDouble); }, ErrorCode::kInvalidArgument,
                        {"cannot be stored in safetensors"}));
}

// ---------------------------------------------------------------------------
// A file written by Hugging Face (Python safetensors), values decoded
// independently with Python's struct module.

class SafetensorsReference : public SafetensorsTestBase {};

TEST_F(SafetensorsReference, ReadsAHuggingFaceFileZeroCopyAndRewritesItIdentically) {
  const fs::path path = m4::test::fixtures() / "lora" / "train_data.safetensors";
  if (!fs::exists(path)) GTEST_SKIP() << "fixture missing: " << path;
  const auto f = m4::SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(names_of(f), (std::vector<std::string>{"input_ids", "labels", "losses", "logits_after"}));

  const at::Tensor ids = f.tensor("input_ids");
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids.sizes(), (at::IntArrayRef{4, 32}));
  EXPECT_TRUE(at::equal(ids.flatten().slice(0, 0, 8),
                        at::tensor(std::vector<int64_t>{106, 152, 249, 131, 184, 200, 0, 21})));
  EXPECT_EQ(ids.sum().item<int64_t>(), 17430);
  EXPECT_TRUE(at::equal(f.tensor("labels"), ids));

  const at::Tensor losses = f.tensor("losses");
  EXPECT_EQ(losses.scalar_type(), at::kDouble);
  EXPECT_EQ(losses.sizes(), (at::IntArrayRef{20}));
  EXPECT_EQ(losses[0].item<double>(), 5.614396095275879);
  EXPECT_EQ(losses[1].item<double>(), 5.608728408813477);
  EXPECT_NEAR(losses.sum().item<double>(), 110.81403636932373, 1e-12);

  const at::Tensor logits = f.tensor("logits_after");
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{4, 32, 256}));
  EXPECT_EQ(logits.flatten()[0].item<float>(), 0.2600805163383484f);
  EXPECT_EQ(logits.flatten()[-1].item<float>(), -0.15211360156536102f);
  const double sum = logits.to(at::kDouble).sum().item<double>();
  EXPECT_NEAR(sum, 146.82546486312276, 1e-9) << "max difference " << std::abs(sum - 146.82546486312276);

  for (const auto& info : f.tensors()) {
    EXPECT_TRUE(inside_mapping(f, f.tensor(info).data_ptr())) << info.name << " was copied";
  }

  // Rewriting it keeps every tensor byte and the metadata.
  m4::NamedTensors all;
  for (const auto& info : f.tensors()) all.emplace_back(info.name, f.tensor(info));
  const fs::path copy = dir_ / "copy.safetensors";
  m4::write_safetensors(copy, all, f.metadata());
  const auto g = m4::SafetensorsFile::open(copy);
  EXPECT_EQ(g.metadata(), f.metadata());
  ASSERT_EQ(names_of(g), names_of(f));
  for (const auto& info : f.tensors()) {
    EXPECT_EQ(g.bytes(*g.find(info.name)), f.bytes(info)) << info.name;
  }
}

// ---------------------------------------------------------------------------
// Known bugs, disabled until safetensors.cpp is fixed; run them with
// --gtest_also_run_disabled_tests. Each fails today.

class SafetensorsFixedBugs : public SafetensorsTestBase {};

// The nesting-depth error is thrown without detail::concat, so a newline in
// the path reaches the message; every other message is one line.
TEST_F(SafetensorsFixedBugs, DeepNestingMessageIsOneLineEvenForAPathWithANewline) {
  const fs::path path = write_raw("deep\nnest.safetensors", file_of(std::string(100, '[')));
  EXPECT_TRUE(throws_m4([&] { m4::SafetensorsFile::open(path); }, ErrorCode::kBadInput,
                        {"nests deeper than any valid header"}));
}

// nlohmann's lexer takes a NUL byte as the end of input, so everything after a
// NUL that follows a complete JSON value is ignored instead of rejected (the
// reference parser, serde_json, rejects it; padding must be spaces).
TEST_F(SafetensorsFixedBugs, NulAfterTheJsonValueIsRejected) {
  const fs::path path =
      write_raw("nul.safetensors", file_of(std::string("{}") + '\0' + " anything at all: not JSON }}}"));
  EXPECT_TRUE(open_rejects(path, "NUL byte"));
  EXPECT_TRUE(throws_m4([] { m4::parse_safetensors_header(std::string("{}\0\0\0\0\0\0", 8), 0, "mem"); },
                        ErrorCode::kBadInput, {"mem", "NUL byte"}));
  EXPECT_TRUE(throws_m4([] { m4::parse_safetensors_header("\xEF\xBB\xBF{}", 0, "mem"); },
                        ErrorCode::kBadInput, {"mem", "byte-order mark"}));
}

// Duplicate keys are caught only at the top level; inside a tensor entry the
// last one silently wins (serde, in the reference, rejects duplicate fields).
TEST_F(SafetensorsFixedBugs, DuplicateFieldInsideATensorEntryIsRejected) {
  const fs::path path = write_raw(
      "dupfield.safetensors",
      file_of(R"({"a":{"dtype":"F32","dtype":"U8","shape":[4],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_TRUE(open_rejects(path, "dtype"));
}

// header.dump() throws nlohmann's type_error (not m4::Error) for a tensor name
// or metadata string that is not valid UTF-8.
TEST_F(SafetensorsFixedBugs, WriterRejectsNonUtf8NamesWithAnM4Error) {
  const fs::path path = dir_ / "utf8.safetensors";
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"w\xff", at::ones({1})}}); },
                        ErrorCode::kInvalidArgument, {path.string()}));
  EXPECT_TRUE(throws_m4([&] { m4::write_safetensors(path, {{"w", at::ones({1})}}, {{"k", "\xc0\xaf"}}); },
                        ErrorCode::kInvalidArgument, {path.string()}));
  EXPECT_TRUE(dir_entries().empty());
}

}  // namespace
