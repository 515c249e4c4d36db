// The safetensors format (https://github.com/huggingface/safetensors, "Format"):
// u64 little-endian header length N, N bytes of UTF-8 JSON, then the raw tensor
// bytes. The reader mmaps the file and hands out read-only tensors that point
// into the mapping (no copy); the writer is atomic and 8-byte aligns the header.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace m4 {

class MappedFile;

// The dtypes safetensors names and m4forge accepts.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

std::optional<DType> dtype_from_name(std::string_view name);  // "F32" -> kF32
const char* dtype_name(DType d);                               // kF32 -> "F32"
size_t dtype_size(DType d);
at::ScalarType to_scalar_type(DType d);
DType from_scalar_type(at::ScalarType t);  // throws for types safetensors lacks

// One entry of the header. Offsets are relative to the start of the data area.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
};

// Hard limit on the header length, as in the reference implementation.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// Parses and validates a header against a data area of `data_size` bytes.
// `where` names the file in error messages. Never allocates from sizes the
// input claims. Throws m4::Error(kBadInput) with a one-line message.
SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_size,
                                           const std::string& where);

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws m4::Error naming the file and problem.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  // A CPU tensor viewing the mapped bytes; the mapping stays alive as long as
  // the tensor does. The memory is read-only: writing through it faults.
  at::Tensor tensor(std::string_view name) const;
  at::Tensor tensor(const TensorInfo& info) const;
  // The raw bytes of one tensor, inside the mapping.
  std::string_view bytes(const TensorInfo& info) const;
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<const MappedFile> file_;
  uint64_t data_start_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes `tensors` (CPU, or CUDA: copied to the CPU first; any layout, written
// contiguous) in the given order, atomically: temp file, fsync, rename. Names
// must be unique.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The same bytes in memory (an entry of an archive); `where` names them in errors.
std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                              const std::string& where);

}  // namespace m4
