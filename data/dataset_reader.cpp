// Dataset reader: validation on open, scattered row reads by hyperslab.
#include "data/dataset_reader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "core/isolated_call.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "data/hdf5_file.h"

namespace m4::data {
namespace {

at::ScalarType scalar_type_of(ElemType t) {
  switch (t) {
    case ElemType::kU8: return at::kByte;
    case ElemType::kI64: return at::kLong;
    case ElemType::kF32: return at::kFloat;
    case ElemType::kString: break;
  }
  M4_FAIL(ErrorCode::kInternal, "no tensor type for strings");
}

// Sorted unique rows and, for each requested index, its position among them.
struct RowPlan {
  std::vector<int64_t> rows;
  std::vector<int64_t> pos;
  bool identity = true;
};

RowPlan plan_rows(const std::vector<int64_t>& indices, int64_t n, const std::string& where) {
  RowPlan p;
  p.rows = indices;
  std::sort(p.rows.begin(), p.rows.end());
  p.rows.erase(std::unique(p.rows.begin(), p.rows.end()), p.rows.end());
  if (!p.rows.empty()) {
    M4_CHECK(p.rows.front() >= 0 && p.rows.back() < n, ErrorCode::kInvalidArgument, where, ": sample index ",
             p.rows.front() < 0 ? p.rows.front() : p.rows.back(), " is out of range [0, ", n, ")");
  }
  p.pos.reserve(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    int64_t q = std::lower_bound(p.rows.begin(), p.rows.end(), indices[i]) - p.rows.begin();
    p.pos.push_back(q);
    if (q != static_cast<int64_t>(i)) p.identity = false;
  }
  if (p.rows.size() != indices.size()) p.identity = false;
  return p;
}

}  // namespace

struct DatasetReader::Impl {
  std::filesystem::path path;
  std::string where;
  H5File file;
  DatasetAttributes attrs;
  int64_t n = 0;
  std::vector<DatasetLayout> layouts;
  std::map<std::string, OpenedDataset> datasets;
  std::vector<int64_t> labels;
  // Whole 1-D int64 columns read on open for validation (label,
  // audio_length): batches are served from memory instead of the file.
  std::map<std::string, at::Tensor> columns;
};

DatasetReader::DatasetReader() : impl_(std::make_unique<Impl>()) {}
DatasetReader::~DatasetReader() = default;

std::shared_ptr<DatasetReader> DatasetReader::open(const std::filesystem::path& path) {
  const char* iso = std::getenv("M4FORGE_HDF5_ISOLATION");
  if (!(iso && std::string(iso) == "off")) {
    check_regular_file(path);  // a FIFO must not block the child either
    int timeout = 30;
    if (const char* t = std::getenv("M4FORGE_HDF5_TIMEOUT_S"); t && std::atoi(t) > 0) timeout = std::atoi(t);
    run_isolated(
        [&] {
          auto r = open_in_process(path);
          std::vector<int64_t> rows;
          for (int64_t i = 0; i < std::min<int64_t>(r->num_samples(), 4); ++i) rows.push_back(i);
          for (const auto& l : r->layouts()) {
            if (l.type == ElemType::kString) {
              r->read_text(l.name, rows);
            } else {
              r->read(l.name, rows);
            }
          }
        },
        timeout, path.string(), "the HDF5 library (libhdf5)");
  }
  return open_in_process(path);
}

std::shared_ptr<DatasetReader> DatasetReader::open_in_process(const std::filesystem::path& path) {
  std::shared_ptr<DatasetReader> r(new DatasetReader());
  Impl& m = *r->impl_;
  m.path = path;
  m.where = path.string();
  const std::string& w = m.where;
  m.file = H5File::open_read(path);
  const hid_t f = m.file.id();
  M4_CHECK(has_attr(f, attr::kFormat, w), ErrorCode::kBadInput, w, ": not an m4forge dataset (no '", attr::kFormat,
           "' attribute; expected \"", kFormatTag, "\")");
  std::string format = read_string_attr(f, attr::kFormat, w);
  M4_CHECK(format == kFormatTag, ErrorCode::kBadInput, w, ": format is \"", format, "\", expected \"", kFormatTag,
           "\"");
  m.n = read_int_attr(f, attr::kNumSamples, w);
  auto opt_string = [&](const char* name) { return has_attr(f, name, w) ? read_string_attr(f, name, w) : ""; };
  m.attrs.source = opt_string(attr::kSource);
  m.attrs.license = opt_string(attr::kLicense);
  m.attrs.split = opt_string(attr::kSplit);
  m.attrs.created_by = opt_string(attr::kCreatedBy);
  if (has_attr(f, attr::kModality, w)) m.attrs.modality = read_strings_attr(f, attr::kModality, w);
  if (has_attr(f, attr::kLabelNames, w)) m.attrs.label_names = read_strings_attr(f, attr::kLabelNames, w);
  if (has_attr(f, attr::kSampleRate, w)) m.attrs.sample_rate = read_int_attr(f, attr::kSampleRate, w);

  std::vector<std::string> problems;
  std::vector<DatasetLayout> found;
  for (const auto& name : root_names(f, w)) {
    OpenedDataset d = open_dataset(f, name, w);
    const DatasetSpec* spec = find_dataset_spec(name);
    if (!d.type) {
      problems.push_back("dataset '" + name + "' has dtype " + d.type_name + ", expected " +
                         (spec ? elem_type_name(spec->type) : "uint8, int64, float32 or string"));
      continue;
    }
    found.push_back({name, *d.type, d.shape});
    m.datasets.emplace(name, std::move(d));
  }
  auto more = check_layouts(found, m.attrs);
  problems.insert(problems.end(), more.begin(), more.end());
  if (problems.empty() && found.front().shape[0] != m.n) {
    problems.push_back("attribute 'num_samples' is " + std::to_string(m.n) + " but the datasets hold " +
                       std::to_string(found.front().shape[0]) + " samples");
  }
  check_problems(problems, w);
  // Table order, so that listings are stable whatever HDF5's link order.
  for (const auto& s : kDatasetSpecs) {
    for (const auto& l : found) {
      if (l.name == s.name) m.layouts.push_back(l);
    }
  }

  std::vector<int64_t> all(static_cast<size_t>(m.n));
  for (int64_t i = 0; i < m.n; ++i) all[static_cast<size_t>(i)] = i;
  if (r->has(ds::kLabel)) {
    m.labels.resize(static_cast<size_t>(m.n));
    read_rows(m.datasets.at(ds::kLabel), all, m.labels.data(), w);
    const int64_t k = static_cast<int64_t>(m.attrs.label_names.size());
    for (int64_t i = 0; i < m.n; ++i) {
      int64_t v = m.labels[static_cast<size_t>(i)];
      M4_CHECK(v >= 0 && v < k, ErrorCode::kBadInput, w, ": dataset 'label' has value ", v, " at sample ", i,
               ", expected [0, ", k, ") (", k, " label names)");
    }
  }
  if (r->has(ds::kLabel)) m.columns[ds::kLabel] = at::tensor(m.labels, at::kLong);
  if (r->has(ds::kAudioLength)) {
    std::vector<int64_t> len(static_cast<size_t>(m.n));
    read_rows(m.datasets.at(ds::kAudioLength), all, len.data(), w);
    m.columns[ds::kAudioLength] = at::tensor(len, at::kLong);
    const int64_t t = r->layout(ds::kAudio).shape[1];
    for (int64_t i = 0; i < m.n; ++i) {
      int64_t v = len[static_cast<size_t>(i)];
      M4_CHECK(v >= 0 && v <= t, ErrorCode::kBadInput, w, ": dataset 'audio_length' has value ", v, " at sample ",
               i, ", expected [0, ", t, "]");
    }
  }
  return r;
}

const std::filesystem::path& DatasetReader::path() const { return impl_->path; }
int64_t DatasetReader::num_samples() const { return impl_->n; }
const DatasetAttributes& DatasetReader::attributes() const { return impl_->attrs; }
const std::vector<DatasetLayout>& DatasetReader::layouts() const { return impl_->layouts; }
const std::vector<int64_t>& DatasetReader::labels() const { return impl_->labels; }

bool DatasetReader::has(const std::string& name) const { return impl_->datasets.count(name) > 0; }

const DatasetLayout& DatasetReader::layout(const std::string& name) const {
  for (const auto& l : impl_->layouts) {
    if (l.name == name) return l;
  }
  std::string present;
  for (const auto& l : impl_->layouts) present += (present.empty() ? "" : ", ") + l.name;
  M4_FAIL(ErrorCode::kMismatch, impl_->where, ": no dataset '", name, "' (the file has: ", present, ")");
}

at::Tensor DatasetReader::read(const std::string& name, const std::vector<int64_t>& indices) const {
  quiet_hdf5();
  const DatasetLayout& l = layout(name);
  M4_CHECK(l.type != ElemType::kString, ErrorCode::kInvalidArgument, impl_->where, ": dataset '", name,
           "' holds strings; use read_text");
  auto column = impl_->columns.find(name);
  if (column != impl_->columns.end()) {
    RowPlan p = plan_rows(indices, impl_->n, impl_->where);  // range check
    return column->second.index_select(0, at::tensor(indices, at::kLong));
  }
  RowPlan p = plan_rows(indices, impl_->n, impl_->where);
  std::vector<int64_t> shape = l.shape;
  shape[0] = static_cast<int64_t>(p.rows.size());
  at::Tensor rows = at::empty(shape, at::TensorOptions().dtype(scalar_type_of(l.type)));
  read_rows(impl_->datasets.at(name), p.rows, rows.data_ptr(), impl_->where);
  if (p.identity) return rows;
  return rows.index_select(0, at::tensor(p.pos, at::kLong));
}

std::vector<std::string> DatasetReader::read_text(const std::string& name, const std::vector<int64_t>& indices) const {
  quiet_hdf5();
  const DatasetLayout& l = layout(name);
  M4_CHECK(l.type == ElemType::kString, ErrorCode::kInvalidArgument, impl_->where, ": dataset '", name,
           "' is not text; use read");
  RowPlan p = plan_rows(indices, impl_->n, impl_->where);
  std::vector<std::string> rows = read_string_rows(impl_->datasets.at(name), p.rows, impl_->where);
  if (p.identity) return rows;
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (int64_t q : p.pos) out.push_back(rows[static_cast<size_t>(q)]);
  return out;
}

}  // namespace m4::data
