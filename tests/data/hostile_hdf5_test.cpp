// HDF5 files that point outside themselves or declare huge samples: refused on
// open, naming the file and the dataset, before any read (a FIFO as external
// storage once hung `train` for 10 minutes).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>

#include <functional>

#include "core/atomic_file.h"
#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "tests/data/data_test_util.h"
#include "tests/support/test_util.h"

namespace m4::data {
namespace {
namespace fs = std::filesystem;

// A valid dataset file (image + label) whose 'image' is then replaced by what `make_image` makes.
void write_with_image(const fs::path& file, const std::function<void(hid_t file)>& make_image) {
  DatasetContents c;
  c.tensors["image"] = at::zeros({2, 1, 28, 28}, at::kByte);
  c.tensors["label"] = at::arange(2, at::kLong);
  c.attrs.label_names = {"a", "b"};
  c.attrs.source = "m4forge test";
  c.attrs.license = "CC0";
  write_dataset(file, c);
  ASSERT_NO_THROW(DatasetReader::open(file));  // valid before the edit
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, "image", H5P_DEFAULT), 0);
  make_image(f);
  H5Fclose(f);
}

hid_t image_space(hsize_t h, hsize_t w) {
  const hsize_t dims[4] = {2, 1, h, w};
  return H5Screate_simple(4, dims, nullptr);
}

TEST(HostileHdf5, ExternalStorageOnAFifoIsRefusedWithoutBlocking) {
  test::TempDir dir;
  const fs::path fifo = dir / "fifo", file = dir / "external.h5";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  write_with_image(file, [&](hid_t f) {
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_external(dcpl, fifo.c_str(), 0, 2 * 28 * 28);
    const hid_t sp = image_space(28, 28);
    H5Dclose(H5Dcreate2(f, "image", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    H5Sclose(sp);
    H5Pclose(dcpl);
  });
  test::expect_error([&] { DatasetReader::open(file); }, {file.string(), "'image'", "external file"});
  // The FIFO itself as a dataset file: refused, not opened.
  test::expect_error([&] { DatasetReader::open(fifo); }, {fifo.string(), "not a regular file", "FIFO"});
}

TEST(HostileHdf5, ExternalAndSoftLinksAreRefused) {
  test::TempDir dir;
  const fs::path other = dir / "other.h5", ext = dir / "extlink.h5", soft = dir / "softlink.h5";
  write_with_image(other, [](hid_t f) {
    const hid_t sp = image_space(28, 28);
    H5Dclose(H5Dcreate2(f, "image", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(sp);
  });
  write_with_image(ext, [&](hid_t f) { H5Lcreate_external(other.c_str(), "/image", f, "image", H5P_DEFAULT, H5P_DEFAULT); });
  test::expect_error([&] { DatasetReader::open(ext); }, {ext.string(), "'image' is an external link"});
  write_with_image(soft, [](hid_t f) { H5Lcreate_soft("/label", f, "image", H5P_DEFAULT, H5P_DEFAULT); });
  test::expect_error([&] { DatasetReader::open(soft); }, {soft.string(), "'image' is a soft link"});
}

TEST(HostileHdf5, VirtualDatasetsAreRefused) {
  test::TempDir dir;
  const fs::path other = dir / "source.h5", file = dir / "virtual.h5";
  write_with_image(other, [](hid_t f) {
    const hid_t sp = image_space(28, 28);
    H5Dclose(H5Dcreate2(f, "image", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(sp);
  });
  write_with_image(file, [&](hid_t f) {
    const hid_t sp = image_space(28, 28);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_virtual(dcpl, sp, other.c_str(), "/image", sp);
    H5Dclose(H5Dcreate2(f, "image", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    H5Pclose(dcpl);
    H5Sclose(sp);
  });
  test::expect_error([&] { DatasetReader::open(file); }, {file.string(), "'image' is a virtual dataset"});
}

TEST(HostileHdf5, HugeDeclaredSamplesAreRefusedBeforeAnyAllocation) {
  test::TempDir dir;
  const fs::path file = dir / "huge.h5";
  // 20000 x 20000 images, chunked and never written: a few KB on disk.
  write_with_image(file, [](hid_t f) {
    const hid_t sp = image_space(20000, 20000);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const hsize_t chunk[4] = {1, 1, 64, 64};
    H5Pset_chunk(dcpl, 4, chunk);
    H5Dclose(H5Dcreate2(f, "image", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    H5Pclose(dcpl);
    H5Sclose(sp);
  });
  EXPECT_LT(fs::file_size(file), 1u << 20);
  test::expect_error([&] { DatasetReader::open(file); }, {file.string(), "'image' samples are 400000000 bytes", "256 MiB"});
}

// Corrupt files the fuzzer found on which libhdf5 itself loops or asks for an
// absurd allocation (tests/fixtures/fuzz/README.md): opening them ends in one
// error line naming the file, from the child process that read them.
TEST(HostileHdf5, FilesThatBreakLibhdf5EndInOneErrorLine) {
  test::TempDir dir;
  ::setenv("M4FORGE_HDF5_TIMEOUT_S", "3", 1);
  for (const char* name : {"hdf5-global-heap-hang.h5.in", "hdf5-huge-metadata-alloc.h5.in", "hdf5-attr-exists-segv.h5.in"}) {
    const std::string bytes = read_text_file(test::repo_dir() / "tests" / "fixtures" / "fuzz" / name);
    const fs::path f = dir / (std::string(name) + ".h5");
    write_file_atomic(f, bytes.substr(1));  // the first byte is the fuzz harness's decoder selector
    const std::string msg = test::expect_error([&] { DatasetReader::open(f); }, {f.string()});
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    if (std::string(name).find("hang") != std::string::npos) {
      EXPECT_NE(msg.find("did not finish in 3 s"), std::string::npos) << msg;
    }
  }
  ::unsetenv("M4FORGE_HDF5_TIMEOUT_S");
}

}  // namespace
}  // namespace m4::data
