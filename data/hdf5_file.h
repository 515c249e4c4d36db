// Thin RAII layer over the HDF5 C API: owned handles, attributes, N-chunked
// datasets and row reads by hyperslab. Every failure is a one-line m4::Error
// naming the file; HDF5's own error-stack printing is switched off.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset_format.h"

namespace m4::data {

// HDF5 prints its error stack to stderr by default, per thread (threadsafe
// builds keep the setting per thread). Call on every thread before HDF5 use.
void quiet_hdf5();

// An owned hid_t, closed with the matching H5?close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset();
  // Closes now and reports failure (a file close flushes: its failure matters).
  void close_checked(const std::string& where);

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// An HDF5 file opened for reading or created for writing.
class H5File {
 public:
  static H5File create(const std::filesystem::path& path);  // truncates
  static H5File open_read(const std::filesystem::path& path);
  hid_t id() const { return file_.get(); }
  const std::string& where() const { return where_; }
  void close();  // flushes; throws on failure

 private:
  Hid file_;
  std::string where_;
};

// Root (or any object) attributes. Strings are variable-length UTF-8.
void write_string_attr(hid_t loc, const char* name, const std::string& value, const std::string& where);
void write_int_attr(hid_t loc, const char* name, int64_t value, const std::string& where);
void write_strings_attr(hid_t loc, const char* name, const std::vector<std::string>& values,
                        const std::string& where);
bool has_attr(hid_t loc, const char* name, const std::string& where);
std::string read_string_attr(hid_t loc, const char* name, const std::string& where);
int64_t read_int_attr(hid_t loc, const char* name, const std::string& where);
std::vector<std::string> read_strings_attr(hid_t loc, const char* name, const std::string& where);

// Names of the objects directly under the root group.
std::vector<std::string> root_names(hid_t file, const std::string& where);

// A dataset of `type` and `shape` (N first), chunked along N with chunks of
// about `chunk_bytes` so that reading a few scattered rows touches little.
Hid create_dataset(hid_t file, const std::string& name, ElemType type, const std::vector<int64_t>& shape,
                   const std::string& where, int64_t chunk_bytes = 64 << 10);
// Writes rows [row0, row0 + rows) from contiguous memory (numeric types).
void write_rows(hid_t dset, ElemType type, const std::vector<int64_t>& shape, int64_t row0, int64_t rows,
                const void* data, const std::string& where);
void write_string_rows(hid_t dset, int64_t row0, const std::vector<std::string>& values, const std::string& where);

// An opened dataset: its element type (nullopt when the file holds a type we do
// not support, described in `type_name`) and shape.
struct OpenedDataset {
  Hid id;
  std::optional<ElemType> type;
  std::string type_name;
  std::vector<int64_t> shape;
};
// Refuses links, external raw storage and virtual datasets (data outside the
// file), and numeric samples (one row) over kMaxSampleBytes.
OpenedDataset open_dataset(hid_t file, const std::string& name, const std::string& where);
inline constexpr uint64_t kMaxSampleBytes = 256ULL << 20;  // e.g. a 8192 x 8192 x 3 uint8 image is 192 MiB

// Reads the rows `sorted_rows` (strictly increasing) into contiguous memory
// (rows x row elements), selecting runs of consecutive rows as hyperslabs.
void read_rows(const OpenedDataset& d, const std::vector<int64_t>& sorted_rows, void* out, const std::string& where);
std::vector<std::string> read_string_rows(const OpenedDataset& d, const std::vector<int64_t>& sorted_rows,
                                          const std::string& where);

}  // namespace m4::data
