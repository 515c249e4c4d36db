// Dataset writer: validate, write a temp file beside the target, fsync, rename.
#include "data/dataset_writer.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "data/hdf5_file.h"

namespace m4::data {
namespace {
namespace fs = std::filesystem;

std::optional<ElemType> elem_type_of(at::ScalarType t) {
  switch (t) {
    case at::kByte: return ElemType::kU8;
    case at::kLong: return ElemType::kI64;
    case at::kFloat: return ElemType::kF32;
    default: return std::nullopt;
  }
}

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  M4_CHECK(fd >= 0, ErrorCode::kIo, p.string(), ": cannot open for fsync");
  int rc = ::fsync(fd);
  ::close(fd);
  M4_CHECK(rc == 0 || directory, ErrorCode::kIo, p.string(), ": fsync failed");
}

// Removes the temporary file unless released (any exception on the way).
struct TempGuard {
  fs::path path;
  bool armed = true;
  ~TempGuard() {
    if (armed) {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
};

}  // namespace

int64_t write_dataset(const fs::path& path, const DatasetContents& c) {
  const std::string where = path.string();
  std::vector<DatasetLayout> layouts;
  for (const auto& [name, t] : c.tensors) {
    M4_CHECK(t.defined(), ErrorCode::kInternal, where, ": dataset '", name, "' is undefined");
    auto type = elem_type_of(t.scalar_type());
    const DatasetSpec* spec = find_dataset_spec(name);
    M4_CHECK(type, ErrorCode::kMismatch, where, ": dataset '", name, "' has dtype ", t.scalar_type(), ", expected ",
             spec ? elem_type_name(spec->type) : "uint8, int64 or float32");
    layouts.push_back({name, *type, t.sizes().vec()});
  }
  for (const auto& [name, v] : c.texts) {
    layouts.push_back({name, ElemType::kString, {static_cast<int64_t>(v.size())}});
  }
  DatasetAttributes attrs = c.attrs;
  if (attrs.modality.empty()) attrs.modality = modalities_of(layouts);
  std::vector<std::string> problems = check_layouts(layouts, attrs);
  auto label = c.tensors.find(ds::kLabel);
  if (problems.empty() && label != c.tensors.end()) {
    at::Tensor l = label->second;
    int64_t lo = l.min().item<int64_t>(), hi = l.max().item<int64_t>();
    const int64_t k = static_cast<int64_t>(attrs.label_names.size());
    if (lo < 0 || hi >= k) {
      problems.push_back("dataset 'label' has values in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], expected [0, " + std::to_string(k) + ") (one per label name)");
    }
  }
  check_problems(problems, where, ErrorCode::kMismatch);
  const int64_t n = layouts.front().shape[0];

  std::error_code ec;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  M4_CHECK(fs::is_directory(dir, ec), ErrorCode::kIo, where, ": directory ", dir.string(), " does not exist");
  static std::atomic<int> counter{0};
  std::ostringstream temp_name;  // (not operator+: GCC 12 warns falsely on it here)
  temp_name << "." << path.filename().string() << ".tmp-" << ::getpid() << "-" << counter++;
  TempGuard guard{dir / temp_name.str()};
  {
    H5File f = H5File::create(guard.path);
    const std::string tw = guard.path.string();
    write_string_attr(f.id(), attr::kFormat, kFormatTag, tw);
    write_int_attr(f.id(), attr::kNumSamples, n, tw);
    write_string_attr(f.id(), attr::kSource, attrs.source, tw);
    write_string_attr(f.id(), attr::kLicense, attrs.license, tw);
    write_string_attr(f.id(), attr::kSplit, attrs.split, tw);
    write_strings_attr(f.id(), attr::kModality, attrs.modality, tw);
    write_strings_attr(f.id(), attr::kLabelNames, attrs.label_names, tw);
    if (attrs.sample_rate) write_int_attr(f.id(), attr::kSampleRate, *attrs.sample_rate, tw);
    write_string_attr(f.id(), attr::kCreatedBy, attrs.created_by, tw);
    for (const auto& l : layouts) {
      Hid d = create_dataset(f.id(), l.name, l.type, l.shape, tw);
      if (l.type == ElemType::kString) {
        write_string_rows(d.get(), 0, c.texts.at(l.name), tw);
      } else {
        at::Tensor t = c.tensors.at(l.name).contiguous();
        write_rows(d.get(), l.type, l.shape, 0, n, t.data_ptr(), tw);
      }
      d.close_checked(tw);
    }
    f.close();
  }
  fsync_path(guard.path, false);
  fs::rename(guard.path, path, ec);
  M4_CHECK(!ec, ErrorCode::kIo, where, ": cannot rename the temporary file into place: ", ec.message());
  guard.armed = false;
  fsync_path(dir, true);
  return n;
}

}  // namespace m4::data
