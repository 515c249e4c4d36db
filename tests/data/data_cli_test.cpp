// End-to-end `m4forge data import` / `data inspect`: the real binary on
// generated IDX files, plus a bad input (one error line, no output file).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class DataCli : public ::testing::Test {
 protected:
  CliRun m4(const std::vector<std::string>& args) {
    // (ostringstream, not operator+: GCC 12 warns falsely on the latter here)
    std::ostringstream cmd;
    cmd << quote(test::cli_path());
    for (const auto& a : args) cmd << " " << quote(a);
    const fs::path o = tmp_ / "stdout", e = tmp_ / "stderr";
    cmd << " >" << quote(o.string()) << " 2>" << quote(e.string());
    int status = std::system(cmd.str().c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }
  void write_idx(const std::string& name, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
    std::vector<char> s = {0, 0, 8, static_cast<char>(dims.size())};
    for (uint32_t d : dims) {
      for (int b = 3; b >= 0; --b) s.push_back(static_cast<char>((d >> (8 * b)) & 0xff));
    }
    s.insert(s.end(), data.begin(), data.end());
    std::ofstream(tmp_ / name, std::ios::binary) << std::string(s.begin(), s.end());
  }
  test::TempDir tmp_;
};

TEST_F(DataCli, ImportThenInspect) {
  write_idx("img", {6, 2, 2}, std::vector<uint8_t>(24, 9));
  write_idx("lab", {6}, {0, 1, 1, 2, 2, 2});
  const std::string out = (tmp_ / "x.h5").string();
  CliRun r = m4({"data", "import", "--format", "idx", "--images", (tmp_ / "img").string(), "--labels",
                 (tmp_ / "lab").string(), "--label-names", "cat,dog,emu", "--license", "CC0", "--split", "val",
                 "--out", out, "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("samples: 6"), std::string::npos) << r.out;

  r = m4({"data", "inspect", out, "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* needle : {"num_samples: 6", "split: val", "license: CC0", "image: uint8 [6, 1, 2, 2]",
                             "label: int64 [6]", "0 cat: 1", "1 dog: 2", "2 emu: 3", "created_by: m4forge data import"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out << "\nmissing: " << needle;
  }
  r = m4({"data", "inspect", out, "--json", "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["num_samples"], 6);
  EXPECT_EQ(j["datasets"]["image"]["shape"], nlohmann::json({6, 1, 2, 2}));
  EXPECT_EQ(j["label_histogram"][2]["count"], 3);
  EXPECT_EQ(j["attributes"]["modality"], nlohmann::json({"image"}));
}

TEST_F(DataCli, BadInputIsOneLineAndNoOutput) {
  write_idx("img", {6, 2, 2}, std::vector<uint8_t>(20, 9));  // 4 bytes short
  write_idx("lab", {6}, {0, 1, 1, 2, 2, 2});
  const fs::path out = tmp_ / "x.h5";
  CliRun r = m4({"data", "import", "--format", "idx", "--images", (tmp_ / "img").string(), "--labels",
                 (tmp_ / "lab").string(), "--out", out.string(), "--log-level", "error"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.err.rfind("m4forge: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("truncated IDX file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  std::ofstream(tmp_ / "junk.h5") << "junk";
  r = m4({"data", "inspect", (tmp_ / "junk.h5").string(), "--log-level", "error"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("junk.h5: not an HDF5 file"), std::string::npos) << r.err;

  r = m4({"data", "import", "--format", "nope", "--out", out.string(), "--log-level", "error"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown import format 'nope'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace m4
