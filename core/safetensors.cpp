// safetensors reader (mmap, zero-copy, strict validation) and atomic writer.
#include "core/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mapped_file.h"

namespace m4 {
namespace {

using json = nlohmann::json;

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
  at::ScalarType scalar;
};
// The one table both reader and writer use.
constexpr DTypeRow kDTypes[] = {
    {DType::kF64, "F64", 8, at::kDouble},   {DType::kF32, "F32", 4, at::kFloat},
    {DType::kF16, "F16", 2, at::kHalf},     {DType::kBF16, "BF16", 2, at::kBFloat16},
    {DType::kI64, "I64", 8, at::kLong},     {DType::kI32, "I32", 4, at::kInt},
    {DType::kI16, "I16", 2, at::kShort},    {DType::kI8, "I8", 1, at::kChar},
    {DType::kU8, "U8", 1, at::kByte},       {DType::kBool, "BOOL", 1, at::kBool},
};

const DTypeRow& row(DType d) {
  for (const auto& r : kDTypes) {
    if (r.dtype == d) return r;
  }
  M4_FAIL(ErrorCode::kInternal, "unknown DType ", static_cast<int>(d));
}

// Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF).
bool valid_utf8(std::string_view s, size_t* bad_at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      *bad_at = i;
      return false;
    }
    if (i + len > n) {
      *bad_at = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        *bad_at = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad_at = i;
      return false;
    }
    i += len;
  }
  return true;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& r : kDTypes) {
    if (name == r.name) return r.dtype;
  }
  return std::nullopt;
}
const char* dtype_name(DType d) { return row(d).name; }
size_t dtype_size(DType d) { return row(d).size; }
at::ScalarType to_scalar_type(DType d) { return row(d).scalar; }
DType from_scalar_type(at::ScalarType t) {
  for (const auto& r : kDTypes) {
    if (r.scalar == t) return r.dtype;
  }
  M4_FAIL(ErrorCode::kInvalidArgument, "dtype ", c10::toString(t), " cannot be stored in safetensors");
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_size,
                                           const std::string& where) {
  size_t bad_at = 0;
  M4_CHECK(valid_utf8(text, &bad_at), ErrorCode::kBadInput, where,
           ": safetensors header is not valid UTF-8 (byte ", bad_at, " of the header)");

  // JSON has no raw NUL anywhere (nlohmann would stop reading at one), and a
  // byte-order mark is not part of the format (nlohmann would skip it).
  M4_CHECK(text.find('\0') == std::string_view::npos, ErrorCode::kBadInput, where,
           ": safetensors header contains a NUL byte (at byte ", text.find('\0'), ")");
  M4_CHECK(text.substr(0, 3) != "\xEF\xBB\xBF", ErrorCode::kBadInput, where,
           ": safetensors header starts with a byte-order mark");

  // Duplicate keys are invisible after parsing (the last one wins), so they
  // are caught while parsing, in every object; the depth limit keeps hostile
  // nesting cheap.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 8 && (event == json::parse_event_t::object_start ||
                      event == json::parse_event_t::array_start)) {
      M4_FAIL(ErrorCode::kBadInput, where, ": safetensors header nests deeper than any valid header");
    }
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) {
        duplicate = depth == 1 ? "tensor '" + k + "' appears twice in the safetensors header"
                               : "field '" + k + "' appears twice in one entry of the safetensors header";
      }
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, where, ": safetensors header is not valid JSON (",
            e.what(), ")");
  }
  M4_CHECK(doc.is_object(), ErrorCode::kBadInput, where,
           ": safetensors header must be a JSON object, found ", doc.type_name());
  M4_CHECK(duplicate.empty(), ErrorCode::kBadInput, where, ": ", duplicate);

  SafetensorsHeader out;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      M4_CHECK(v.is_object(), ErrorCode::kBadInput, where,
               ": __metadata__ must be an object of strings, found ", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        M4_CHECK(m.value().is_string(), ErrorCode::kBadInput, where, ": __metadata__ value '",
                 m.key(), "' is a ", m.value().type_name(), ", but metadata values must be strings");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto&&... parts) {
      M4_FAIL(ErrorCode::kBadInput, where, ": tensor '", name, "': ", parts...);
    };
    if (!v.is_object()) bad("entry must be an object, found ", v.type_name());
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad("missing string field 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) bad("missing array field 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array())
      bad("missing array field 'data_offsets'");
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        bad("unknown field '", f.key(), "'");
    }
    TensorInfo info;
    info.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    auto d = dtype_from_name(dt);
    if (!d) bad("unknown dtype '", dt, "' (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    info.dtype = *d;
    const json& shape = v["shape"];
    uint64_t bytes = dtype_size(info.dtype);
    for (const json& dim : shape) {
      if (!dim.is_number_unsigned()) bad("shape ", shape.dump(), " must hold non-negative integers");
      uint64_t n = dim.get<uint64_t>();
      if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, n, &bytes))
        bad("shape ", shape.dump(), " x ", dt, " overflows 64 bits");
      info.shape.push_back(static_cast<int64_t>(n));
    }
    const json& off = v["data_offsets"];
    if (off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad("data_offsets ", off.dump(), " must be two non-negative integers");
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.end < info.begin) bad("data_offsets ", off.dump(), " are inverted (end < begin)");
    if (info.end > data_size)
      bad("data_offsets ", off.dump(), " reach past the end of the data (", data_size, " bytes)");
    if (info.end - info.begin != bytes)
      bad("shape ", shape_str(info.shape), " x ", dt, " is ", bytes, " bytes but data_offsets ",
          off.dump(), " span ", info.end - info.begin);
    out.tensors.push_back(std::move(info));
  }

  // The data area must be tiled exactly: start at 0, no gaps, no overlaps,
  // nothing after the last tensor.
  std::stable_sort(out.tensors.begin(), out.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : out.tensors) {
    if (t.begin > cursor) {
      if (prev == nullptr) {
        M4_FAIL(ErrorCode::kBadInput, where, ": tensor data does not start at offset 0 (first tensor '",
                t.name, "' starts at ", t.begin, ")");
      }
      M4_FAIL(ErrorCode::kBadInput, where, ": gap of ", t.begin - cursor, " bytes between tensors '",
              prev->name, "' and '", t.name, "'");
    }
    if (t.begin < cursor) {
      M4_FAIL(ErrorCode::kBadInput, where, ": tensors '", prev->name, "' and '", t.name,
              "' overlap (", t.name, " starts at ", t.begin, ", before ", cursor, ")");
    }
    cursor = t.end;
    prev = &t;
  }
  M4_CHECK(cursor == data_size, ErrorCode::kBadInput, where, ": ", data_size - cursor,
           " trailing bytes after the last tensor");
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  const std::string where = path.string();
  const uint64_t size = f.file_->size();
  M4_CHECK(size >= 8, ErrorCode::kBadInput, where, ": file is ", size,
           " bytes, too short for a safetensors header (8-byte length prefix)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f.file_->data()[i];
  M4_CHECK(n <= kMaxSafetensorsHeader, ErrorCode::kBadInput, where, ": header length ", n,
           " exceeds the 100 MB limit");
  M4_CHECK(n <= size - 8, ErrorCode::kBadInput, where, ": header length ", n,
           " reaches past the end of the file (", size, " bytes)");
  std::string_view text(reinterpret_cast<const char*>(f.file_->data()) + 8, n);
  f.data_start_ = 8 + n;
  f.header_ = parse_safetensors_header(text, size - f.data_start_, where);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_[f.header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::string_view SafetensorsFile::bytes(const TensorInfo& info) const {
  return {reinterpret_cast<const char*>(file_->data()) + data_start_ + info.begin, info.nbytes()};
}

at::Tensor SafetensorsFile::tensor(std::string_view name) const {
  const TensorInfo* info = find(name);
  M4_CHECK(info != nullptr, ErrorCode::kMismatch, path_.string(), ": no tensor named '", name, "'");
  return tensor(*info);
}

at::Tensor SafetensorsFile::tensor(const TensorInfo& info) const {
  auto options = at::TensorOptions().dtype(to_scalar_type(info.dtype)).device(at::kCPU);
  if (info.nbytes() == 0) return at::empty(info.shape, options);
  void* ptr = const_cast<char*>(bytes(info).data());
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(info.dtype) != 0) {
    // Misaligned for its element type (legal in the format, never written by
    // us or by HF): copy rather than hand kernels an unaligned pointer.
    at::Tensor t = at::empty(info.shape, options);
    std::memcpy(t.data_ptr(), ptr, info.nbytes());
    return t;
  }
  auto keep = file_;
  return at::from_blob(ptr, info.shape, [keep](void*) {}, options);
}

namespace {

// The file's bytes, in order, handed to `write`; `where` names the target in errors.
void serialize_safetensors(const std::string& where, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                           const std::function<void(const void*, size_t)>& write) {
  const std::filesystem::path path = where;
  size_t bad_at = 0;
  for (const auto& [k, v] : metadata) {
    M4_CHECK(valid_utf8(k, &bad_at) && valid_utf8(v, &bad_at), ErrorCode::kInvalidArgument, path.string(),
             ": metadata entry '", k, "' is not valid UTF-8");
  }
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  contiguous.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    M4_CHECK(name != "__metadata__", ErrorCode::kInvalidArgument, path.string(),
             ": '__metadata__' cannot name a tensor");
    M4_CHECK(!header.contains(name), ErrorCode::kInvalidArgument, path.string(),
             ": tensor '", name, "' given twice");
    M4_CHECK(valid_utf8(name, &bad_at), ErrorCode::kInvalidArgument, path.string(),
             ": tensor name is not valid UTF-8 (byte ", bad_at, ")");
    M4_CHECK(t.defined() && (t.device().is_cpu() || t.device().is_cuda()), ErrorCode::kInvalidArgument, path.string(),
             ": tensor '", name, "' must be a defined CPU or CUDA tensor");
    M4_CHECK(!at::isComplexType(t.scalar_type()) && t.scalar_type() != at::kQInt8, ErrorCode::kInvalidArgument,
             path.string(), ": tensor '", name, "' has dtype ", c10::toString(t.scalar_type()),
             ", which cannot be stored in safetensors");
    // Lazy negation/conjugation bits are not applied by contiguous(): resolve
    // them. A device tensor is written from its CPU copy, so a file is the
    // same bytes whichever device trained it.
    at::Tensor c = t.resolve_conj().resolve_neg().to(at::kCPU).contiguous();
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dtype_name(from_scalar_type(c.scalar_type()))},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(std::move(c));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  write(len, 8);
  write(text.data(), text.size());
  for (const auto& c : contiguous) write(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  AtomicFileWriter w(path);
  serialize_safetensors(path.string(), tensors, metadata, [&](const void* p, size_t n) { w.write(p, n); });
  w.commit();
}

std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                              const std::string& where) {
  std::string out;
  serialize_safetensors(where, tensors, metadata, [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

}  // namespace m4
