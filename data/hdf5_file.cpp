// RAII layer over the HDF5 C API (see hdf5_file.h). Every return is checked;
// a failure becomes one m4::Error line that names the file and, where HDF5
// says why, its innermost reason.
#include "data/hdf5_file.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace m4::data {
namespace {

// The innermost description on the calling thread's HDF5 error stack (the
// place the failure was detected), e.g. "truncated file: eof = 1000, ...".
herr_t walk_cb(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err->desc) *out = err->desc;
  return 0;
}

std::string hdf5_reason() {
  std::string r;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &r);
  H5Eclear2(H5E_DEFAULT);
  return r.empty() ? "" : " (" + r + ")";
}

[[noreturn]] void fail(ErrorCode code, const std::string& where, const std::string& what) {
  M4_FAIL(code, where, ": ", what, hdf5_reason());
}

hid_t check(hid_t id, const std::string& where, const std::string& what, ErrorCode code = ErrorCode::kBadInput) {
  if (id < 0) fail(code, where, what);
  return id;
}

void check_status(herr_t s, const std::string& where, const std::string& what, ErrorCode code = ErrorCode::kBadInput) {
  if (s < 0) fail(code, where, what);
}

Hid vlen_string_type(const std::string& where) {
  Hid t(check(H5Tcopy(H5T_C_S1), where, "H5Tcopy failed", ErrorCode::kInternal), H5Tclose);
  check_status(H5Tset_size(t.get(), H5T_VARIABLE), where, "H5Tset_size failed", ErrorCode::kInternal);
  check_status(H5Tset_cset(t.get(), H5T_CSET_UTF8), where, "H5Tset_cset failed", ErrorCode::kInternal);
  return t;
}

hid_t file_type(ElemType t) {
  switch (t) {
    case ElemType::kU8: return H5T_STD_U8LE;
    case ElemType::kI64: return H5T_STD_I64LE;
    case ElemType::kF32: return H5T_IEEE_F32LE;
    case ElemType::kString: break;
  }
  return H5I_INVALID_HID;
}

hid_t memory_type(ElemType t) {
  switch (t) {
    case ElemType::kU8: return H5T_NATIVE_UINT8;
    case ElemType::kI64: return H5T_NATIVE_INT64;
    case ElemType::kF32: return H5T_NATIVE_FLOAT;
    case ElemType::kString: break;
  }
  return H5I_INVALID_HID;
}

std::vector<hsize_t> to_hsize(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

void quiet_hdf5() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

void Hid::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

void Hid::close_checked(const std::string& where) {
  if (id_ < 0) return;
  herr_t s = closer_(id_);
  id_ = H5I_INVALID_HID;
  check_status(s, where, "cannot close (write failed?)", ErrorCode::kIo);
}

H5File H5File::create(const std::filesystem::path& path) {
  quiet_hdf5();
  H5File f;
  f.where_ = path.string();
  // The root group without timestamps, like every dataset (reproducible files).
  Hid fcpl(check(H5Pcreate(H5P_FILE_CREATE), f.where_, "H5Pcreate failed", ErrorCode::kInternal), H5Pclose);
  check_status(H5Pset_obj_track_times(fcpl.get(), 0), f.where_, "cannot turn off timestamps", ErrorCode::kInternal);
  f.file_ = Hid(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), f.where_,
                      "cannot create HDF5 file", ErrorCode::kIo),
                H5Fclose);
  return f;
}

H5File H5File::open_read(const std::filesystem::path& path) {
  quiet_hdf5();
  H5File f;
  f.where_ = path.string();
  check_regular_file(path);
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    H5Eclear2(H5E_DEFAULT);
    M4_FAIL(ErrorCode::kBadInput, f.where_, ": not an HDF5 file (no HDF5 signature; truncated or another format?)");
  }
  f.file_ = Hid(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), f.where_,
                      "cannot open as HDF5 (truncated or corrupt file)"),
                H5Fclose);
  return f;
}

void H5File::close() { file_.close_checked(where_); }

void write_string_attr(hid_t loc, const char* name, const std::string& value, const std::string& where) {
  Hid type = vlen_string_type(where);
  Hid space(check(H5Screate(H5S_SCALAR), where, "H5Screate failed", ErrorCode::kInternal), H5Sclose);
  Hid a(check(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where,
              std::string("cannot create attribute '") + name + "'", ErrorCode::kIo),
        H5Aclose);
  const char* p = value.c_str();
  check_status(H5Awrite(a.get(), type.get(), &p), where, std::string("cannot write attribute '") + name + "'",
               ErrorCode::kIo);
}

void write_int_attr(hid_t loc, const char* name, int64_t value, const std::string& where) {
  Hid space(check(H5Screate(H5S_SCALAR), where, "H5Screate failed", ErrorCode::kInternal), H5Sclose);
  Hid a(check(H5Acreate2(loc, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), where,
              std::string("cannot create attribute '") + name + "'", ErrorCode::kIo),
        H5Aclose);
  check_status(H5Awrite(a.get(), H5T_NATIVE_INT64, &value), where,
               std::string("cannot write attribute '") + name + "'", ErrorCode::kIo);
}

void write_strings_attr(hid_t loc, const char* name, const std::vector<std::string>& values,
                        const std::string& where) {
  Hid type = vlen_string_type(where);
  hsize_t n = values.size();
  // An empty list is a null dataspace: zero-sized simple extents are not portable.
  Hid space(check(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), where, "H5Screate failed",
                  ErrorCode::kInternal),
            H5Sclose);
  Hid a(check(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where,
              std::string("cannot create attribute '") + name + "'", ErrorCode::kIo),
        H5Aclose);
  if (!n) return;
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  check_status(H5Awrite(a.get(), type.get(), ptrs.data()), where,
               std::string("cannot write attribute '") + name + "'", ErrorCode::kIo);
}

bool has_attr(hid_t loc, const char* name, const std::string& where) {
  htri_t e = H5Aexists(loc, name);
  check_status(e, where, std::string("cannot look up attribute '") + name + "'");
  return e > 0;
}

namespace {

// Reads every element of a string attribute (scalar or 1-D, fixed or variable).
std::vector<std::string> read_attr_strings(hid_t loc, const char* name, const std::string& where) {
  M4_CHECK(has_attr(loc, name, where), ErrorCode::kBadInput, where, ": missing attribute '", name, "'");
  Hid a(check(H5Aopen(loc, name, H5P_DEFAULT), where, std::string("cannot open attribute '") + name + "'"), H5Aclose);
  Hid ftype(check(H5Aget_type(a.get()), where, "cannot get attribute type"), H5Tclose);
  M4_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, ErrorCode::kBadInput, where, ": attribute '", name,
           "' is not a string");
  Hid space(check(H5Aget_space(a.get()), where, "cannot get attribute space"), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  check_status(static_cast<herr_t>(n < 0 ? -1 : 0), where, std::string("bad extent of attribute '") + name + "'");
  std::vector<std::string> out;
  if (n == 0) return out;
  htri_t variable = H5Tis_variable_str(ftype.get());
  check_status(variable, where, "cannot query string type");
  if (variable) {
    Hid mtype = vlen_string_type(where);
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    check_status(H5Aread(a.get(), mtype.get(), ptrs.data()), where,
                 std::string("cannot read attribute '") + name + "'");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    size_t size = H5Tget_size(ftype.get());
    Hid mtype(check(H5Tcopy(H5T_C_S1), where, "H5Tcopy failed", ErrorCode::kInternal), H5Tclose);
    check_status(H5Tset_size(mtype.get(), size), where, "H5Tset_size failed", ErrorCode::kInternal);
    std::vector<char> buf(size * static_cast<size_t>(n));
    check_status(H5Aread(a.get(), mtype.get(), buf.data()), where,
                 std::string("cannot read attribute '") + name + "'");
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

}  // namespace

std::string read_string_attr(hid_t loc, const char* name, const std::string& where) {
  auto v = read_attr_strings(loc, name, where);
  M4_CHECK(v.size() == 1, ErrorCode::kBadInput, where, ": attribute '", name, "' holds ", v.size(),
           " strings, expected 1");
  return v[0];
}

std::vector<std::string> read_strings_attr(hid_t loc, const char* name, const std::string& where) {
  return read_attr_strings(loc, name, where);
}

int64_t read_int_attr(hid_t loc, const char* name, const std::string& where) {
  M4_CHECK(has_attr(loc, name, where), ErrorCode::kBadInput, where, ": missing attribute '", name, "'");
  Hid a(check(H5Aopen(loc, name, H5P_DEFAULT), where, std::string("cannot open attribute '") + name + "'"), H5Aclose);
  Hid ftype(check(H5Aget_type(a.get()), where, "cannot get attribute type"), H5Tclose);
  M4_CHECK(H5Tget_class(ftype.get()) == H5T_INTEGER, ErrorCode::kBadInput, where, ": attribute '", name,
           "' is not an integer");
  Hid space(check(H5Aget_space(a.get()), where, "cannot get attribute space"), H5Sclose);
  M4_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, ErrorCode::kBadInput, where, ": attribute '", name,
           "' is not a single integer");
  int64_t v = 0;
  check_status(H5Aread(a.get(), H5T_NATIVE_INT64, &v), where, std::string("cannot read attribute '") + name + "'");
  return v;
}

std::vector<std::string> root_names(hid_t file, const std::string& where) {
  H5G_info_t info;
  check_status(H5Gget_info(file, &info), where, "cannot list the root group");
  std::vector<std::string> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check_status(static_cast<herr_t>(len < 0 ? -1 : 0), where, "cannot list the root group");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    out.push_back(name);
  }
  return out;
}

Hid create_dataset(hid_t file, const std::string& name, ElemType type, const std::vector<int64_t>& shape,
                   const std::string& where, int64_t chunk_bytes) {
  M4_CHECK(!shape.empty() && shape[0] > 0, ErrorCode::kInvalidArgument, where, ": dataset '", name,
           "' has no samples");
  auto dims = to_hsize(shape);
  Hid space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where,
                  "cannot create dataspace for '" + name + "'", ErrorCode::kInternal),
            H5Sclose);
  int64_t row_bytes = type == ElemType::kString ? 16 : (type == ElemType::kU8 ? 1 : type == ElemType::kF32 ? 4 : 8);
  for (size_t i = 1; i < shape.size(); ++i) row_bytes *= std::max<int64_t>(shape[i], 1);
  // Chunks along N only: a row is never split, so a scattered read touches one
  // chunk per row (or per run of rows), and small chunks keep that cheap.
  std::vector<hsize_t> chunk = dims;
  chunk[0] = static_cast<hsize_t>(std::clamp<int64_t>(chunk_bytes / row_bytes, 1, shape[0]));
  for (size_t i = 1; i < chunk.size(); ++i) chunk[i] = std::max<hsize_t>(chunk[i], 1);
  Hid dcpl(check(H5Pcreate(H5P_DATASET_CREATE), where, "H5Pcreate failed", ErrorCode::kInternal), H5Pclose);
  check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), where,
               "cannot set chunking of '" + name + "'", ErrorCode::kInternal);
  // No object timestamps: the same data gives the same bytes (reproducible datasets).
  check_status(H5Pset_obj_track_times(dcpl.get(), 0), where, "cannot turn off timestamps of '" + name + "'",
               ErrorCode::kInternal);
  Hid strtype;
  hid_t ftype = file_type(type);
  if (type == ElemType::kString) {
    strtype = vlen_string_type(where);
    ftype = strtype.get();
  }
  return Hid(check(H5Dcreate2(file, name.c_str(), ftype, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), where,
                   "cannot create dataset '" + name + "'", ErrorCode::kIo),
             H5Dclose);
}

void write_rows(hid_t dset, ElemType type, const std::vector<int64_t>& shape, int64_t row0, int64_t rows,
                const void* data, const std::string& where) {
  Hid fspace(check(H5Dget_space(dset), where, "cannot get dataspace", ErrorCode::kInternal), H5Sclose);
  std::vector<hsize_t> start(shape.size(), 0), count = to_hsize(shape);
  start[0] = static_cast<hsize_t>(row0);
  count[0] = static_cast<hsize_t>(rows);
  check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
               where, "cannot select rows", ErrorCode::kInternal);
  Hid mspace(check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), where,
                   "H5Screate_simple failed", ErrorCode::kInternal),
             H5Sclose);
  check_status(H5Dwrite(dset, memory_type(type), mspace.get(), fspace.get(), H5P_DEFAULT, data), where,
               "cannot write dataset rows", ErrorCode::kIo);
}

void write_string_rows(hid_t dset, int64_t row0, const std::vector<std::string>& values, const std::string& where) {
  if (values.empty()) return;
  Hid type = vlen_string_type(where);
  Hid fspace(check(H5Dget_space(dset), where, "cannot get dataspace", ErrorCode::kInternal), H5Sclose);
  hsize_t start = static_cast<hsize_t>(row0), count = values.size();
  check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), where,
               "cannot select rows", ErrorCode::kInternal);
  Hid mspace(check(H5Screate_simple(1, &count, nullptr), where, "H5Screate_simple failed", ErrorCode::kInternal),
             H5Sclose);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  check_status(H5Dwrite(dset, type.get(), mspace.get(), fspace.get(), H5P_DEFAULT, ptrs.data()), where,
               "cannot write strings", ErrorCode::kIo);
}

OpenedDataset open_dataset(hid_t file, const std::string& name, const std::string& where) {
  OpenedDataset d;
  // Only datasets stored inside this file: a soft or external link, external
  // raw storage or a virtual dataset would read other files' bytes as data
  // (a FIFO among them would block the reader for ever).
  H5L_info_t link;  // HDF5 1.10's name (Debian 12); 1.12 maps it to H5L_info1_t unless told otherwise
  check_status(H5Lget_info(file, name.c_str(), &link, H5P_DEFAULT), where, "cannot inspect '" + name + "'");
  M4_CHECK(link.type == H5L_TYPE_HARD, ErrorCode::kBadInput, where, ": '", name, "' is ",
           link.type == H5L_TYPE_EXTERNAL ? "an external link" : link.type == H5L_TYPE_SOFT ? "a soft link" : "a user-defined link",
           "; a dataset file holds its data itself (no links)");
  // No chunk cache: uncompressed chunks that cannot be cached are read
  // directly, only the selected bytes, instead of a whole chunk per sampled
  // row (the OS page cache still caches the file).
  Hid dapl(check(H5Pcreate(H5P_DATASET_ACCESS), where, "H5Pcreate failed", ErrorCode::kInternal), H5Pclose);
  check_status(H5Pset_chunk_cache(dapl.get(), 0, 0, H5D_CHUNK_CACHE_W0_DEFAULT), where, "H5Pset_chunk_cache failed",
               ErrorCode::kInternal);
  d.id = Hid(check(H5Dopen2(file, name.c_str(), dapl.get()), where, "cannot open dataset '" + name + "'"),
             H5Dclose);
  {
    Hid dcpl(check(H5Dget_create_plist(d.id.get()), where, "cannot inspect '" + name + "'"), H5Pclose);
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    M4_CHECK(layout == H5D_CONTIGUOUS || layout == H5D_CHUNKED || layout == H5D_COMPACT, ErrorCode::kBadInput, where, ": '",
             name, "' is ", layout == H5D_VIRTUAL ? "a virtual dataset" : "stored in an unsupported layout",
             "; a dataset file holds its data itself");
    const int external = H5Pget_external_count(dcpl.get());
    M4_CHECK(external == 0, ErrorCode::kBadInput, where, ": '", name, "' keeps its data in ",
             external < 0 ? "an unreadable" : std::to_string(external), " external file(s); a dataset file holds its data itself");
  }
  Hid t(check(H5Dget_type(d.id.get()), where, "cannot get the type of '" + name + "'"), H5Tclose);
  size_t size = H5Tget_size(t.get());
  switch (H5Tget_class(t.get())) {
    case H5T_INTEGER: {
      bool is_signed = H5Tget_sign(t.get()) == H5T_SGN_2;
      d.type_name = std::string(is_signed ? "int" : "uint") + std::to_string(size * 8);
      if (!is_signed && size == 1) d.type = ElemType::kU8;
      if (is_signed && size == 8) d.type = ElemType::kI64;
      break;
    }
    case H5T_FLOAT:
      d.type_name = "float" + std::to_string(size * 8);
      if (size == 4) d.type = ElemType::kF32;
      break;
    case H5T_STRING: {
      htri_t v = H5Tis_variable_str(t.get());
      check_status(v, where, "cannot query the string type of '" + name + "'");
      d.type_name = v ? "string" : "fixed-length string";
      if (v) d.type = ElemType::kString;
      break;
    }
    default:
      d.type_name = "unsupported HDF5 type class";
  }
  Hid space(check(H5Dget_space(d.id.get()), where, "cannot get the dataspace of '" + name + "'"), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  check_status(rank, where, "cannot get the rank of '" + name + "'");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  check_status(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where,
               "cannot get the shape of '" + name + "'");
  d.shape.assign(dims.begin(), dims.end());
  // One sample (a row) is read whole: bound it before anything is allocated for it.
  if (d.type != ElemType::kString && rank >= 1) {
    uint64_t row = size;
    for (int i = 1; i < rank; ++i) {
      M4_CHECK(dims[static_cast<size_t>(i)] <= kMaxSampleBytes && row <= kMaxSampleBytes, ErrorCode::kBadInput, where, ": '",
               name, "' samples are over the ", kMaxSampleBytes >> 20, " MiB limit per sample");
      row *= dims[static_cast<size_t>(i)];
    }
    M4_CHECK(row <= kMaxSampleBytes, ErrorCode::kBadInput, where, ": '", name, "' samples are ", row,
             " bytes each, over the ", kMaxSampleBytes >> 20, " MiB limit per sample");
  }
  return d;
}

namespace {

// Calls fn(first, count, fspace, mspace) for each run of consecutive rows of
// `sorted_rows`, with the file selection set to the run and a memory space of
// `count` rows. One H5Dread per run: a single read of the OR-ed selection is
// slower, since HDF5 maps an irregular selection onto every chunk of its
// bounding box (most of the file, for a shuffled batch). The dataspaces are
// made once and re-selected (the per-call overhead dominates for small rows).
template <typename Fn>
void for_each_run(const OpenedDataset& d, const std::vector<int64_t>& sorted_rows, const std::string& where, Fn&& fn) {
  Hid fspace(check(H5Dget_space(d.id.get()), where, "cannot get a dataspace"), H5Sclose);
  std::vector<hsize_t> start(d.shape.size(), 0), count = to_hsize(d.shape);
  Hid mspace;
  hsize_t mspace_rows = 0;
  for (size_t i = 0; i < sorted_rows.size();) {
    size_t j = i + 1;
    while (j < sorted_rows.size() && sorted_rows[j] == sorted_rows[j - 1] + 1) ++j;
    M4_CHECK(sorted_rows[i] >= 0 && sorted_rows[j - 1] < d.shape[0], ErrorCode::kInvalidArgument, where, ": row ",
             sorted_rows[j - 1], " is out of range [0, ", d.shape[0], ")");
    start[0] = static_cast<hsize_t>(sorted_rows[i]);
    count[0] = j - i;
    check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
                 where, "cannot select rows");
    if (mspace_rows != count[0]) {
      mspace = Hid(check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), where,
                         "H5Screate_simple failed", ErrorCode::kInternal),
                   H5Sclose);
      mspace_rows = count[0];
    }
    fn(i, j - i, fspace.get(), mspace.get());
    i = j;
  }
}

}  // namespace

void read_rows(const OpenedDataset& d, const std::vector<int64_t>& sorted_rows, void* out, const std::string& where) {
  M4_CHECK(d.type && *d.type != ElemType::kString, ErrorCode::kInternal, where, ": read_rows on a non-numeric dataset");
  int64_t row_bytes = *d.type == ElemType::kU8 ? 1 : *d.type == ElemType::kF32 ? 4 : 8;
  for (size_t i = 1; i < d.shape.size(); ++i) row_bytes *= d.shape[i];
  auto* dst = static_cast<uint8_t*>(out);
  for_each_run(d, sorted_rows, where, [&](size_t first, size_t, hid_t fspace, hid_t mspace) {
    check_status(H5Dread(d.id.get(), memory_type(*d.type), mspace, fspace, H5P_DEFAULT,
                         dst + static_cast<int64_t>(first) * row_bytes),
                 where, "cannot read rows (truncated or corrupt file?)");
  });
}

std::vector<std::string> read_string_rows(const OpenedDataset& d, const std::vector<int64_t>& sorted_rows,
                                          const std::string& where) {
  std::vector<std::string> out(sorted_rows.size());
  Hid type = vlen_string_type(where);
  std::vector<char*> ptrs;
  for_each_run(d, sorted_rows, where, [&](size_t first, size_t count, hid_t fspace, hid_t mspace) {
    ptrs.assign(count, nullptr);
    check_status(H5Dread(d.id.get(), type.get(), mspace, fspace, H5P_DEFAULT, ptrs.data()), where,
                 "cannot read strings (truncated or corrupt file?)");
    for (size_t k = 0; k < count; ++k) out[first + k] = ptrs[k] ? ptrs[k] : "";
    H5Dvlen_reclaim(type.get(), mspace, H5P_DEFAULT, ptrs.data());
  });
  return out;
}

}  // namespace m4::data
