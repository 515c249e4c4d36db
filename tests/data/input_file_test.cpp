// One input decoded for a model: from a file by its extension, or from bytes
// in memory with a named format (a serve request), the same tensors either way.
#include "data/input_file.h"

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "tests/support/image_files.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(InputFile, BytesDecodeAsTheFileDoes) {
  test::TempDir dir;
  test::write_flat_png(dir / "x.png", 1, 5, 7, 42);
  const data::Batch file = data::read_input_file(dir / "x.png");
  const data::Batch bytes = data::read_input_bytes(read_text_file(dir / "x.png"), "png", "request input");
  ASSERT_TRUE(bytes.tensors.count("image"));
  EXPECT_TRUE(bytes.tensors.at("image").equal(file.tensors.at("image")));
  EXPECT_EQ(bytes.tensors.at("image").sizes(), (std::vector<int64_t>{1, 3, 5, 7}));
  // The format wins over the name: a .dat file read as CSV IMU rows.
  write_file_atomic(dir / "imu.dat", "ax,ay,az,gx,gy,gz\n1,2,3,4,5,6\n7,8,9,10,11,12\n");
  EXPECT_EQ(data::read_input_file(dir / "imu.dat", "csv").tensors.at("imu").sizes(), (std::vector<int64_t>{1, 2, 6}));
  EXPECT_EQ(data::read_input_bytes("hello", "txt", "r").texts.at("text"), std::vector<std::string>{"hello"});
}

TEST(InputFile, BadBytesNameTheRequestNotAMemoryFile) {
  const std::string msg = test::expect_error([] { data::read_input_bytes("not a png", "png", "input (png)"); }, {"input (png)"});
  EXPECT_EQ(msg.find("/proc/self/fd"), std::string::npos) << msg;
  test::expect_error([] { data::read_input_bytes("1,2\n", "csv", "input (csv)"); }, {"input (csv):1: expected 6 numbers"});
  test::expect_error([] { data::read_input_bytes("x", "gif", "input"); }, {"unknown input kind '.gif'"});
}

}  // namespace
}  // namespace m4
