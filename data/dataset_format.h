// The m4forge HDF5 dataset format (docs/data-format.md): the one table of
// dataset and attribute names, dtypes and ranks that the writer and reader share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m4::data {

// Written into the root attribute `format`; a reader refuses any other value.
inline constexpr const char* kFormatTag = "m4forge-dataset/1";

// Element types a dataset may hold. Strings are variable-length UTF-8.
enum class ElemType { kU8, kI64, kF32, kString };
const char* elem_type_name(ElemType t);  // kU8 -> "uint8"

// One row of the table: a dataset's name, element type, rank (N first) and,
// where fixed, the size of the last dimension (imu: 6 axes).
struct DatasetSpec {
  const char* name;
  ElemType type;
  int rank;
  int64_t last_dim;  // 0 = free
  const char* modality;  // which `modality` entry it implies
  const char* shape_doc;
};

inline constexpr DatasetSpec kDatasetSpecs[] = {
    {"image", ElemType::kU8, 4, 0, "image", "(N,C,H,W)"},
    {"audio", ElemType::kF32, 2, 0, "audio", "(N,T)"},
    {"audio_length", ElemType::kI64, 1, 0, "audio", "(N)"},
    {"imu", ElemType::kF32, 3, 6, "imu", "(N,T,6)"},
    {"text", ElemType::kString, 1, 0, "text", "(N)"},
    {"target_text", ElemType::kString, 1, 0, "text", "(N)"},
    {"label", ElemType::kI64, 1, 0, nullptr, "(N)"},
    {"input_ids", ElemType::kI64, 2, 0, "text", "(N,T)"},
    {"attention_mask", ElemType::kI64, 2, 0, "text", "(N,T)"},
};

// nullptr when `name` is not in the table.
const DatasetSpec* find_dataset_spec(std::string_view name);
// "image, audio, ..." for error messages.
std::string known_dataset_names();

// Dataset names, spelled once.
namespace ds {
inline constexpr const char* kImage = "image";
inline constexpr const char* kAudio = "audio";
inline constexpr const char* kAudioLength = "audio_length";
inline constexpr const char* kImu = "imu";
inline constexpr const char* kText = "text";
inline constexpr const char* kTargetText = "target_text";
inline constexpr const char* kLabel = "label";
inline constexpr const char* kInputIds = "input_ids";
inline constexpr const char* kAttentionMask = "attention_mask";
}  // namespace ds

// Root attribute names, spelled once.
namespace attr {
inline constexpr const char* kFormat = "format";            // string
inline constexpr const char* kNumSamples = "num_samples";   // int64
inline constexpr const char* kSource = "source";            // string
inline constexpr const char* kLicense = "license";          // string
inline constexpr const char* kSplit = "split";              // string
inline constexpr const char* kModality = "modality";        // string array
inline constexpr const char* kLabelNames = "label_names";   // string array
inline constexpr const char* kSampleRate = "sample_rate";   // int64, audio only
inline constexpr const char* kCreatedBy = "created_by";     // string
}  // namespace attr

// The root attributes other than `format` and `num_samples` (which the writer
// derives and the reader checks).
struct DatasetAttributes {
  std::string source;
  std::string license;
  std::string split = "train";
  std::vector<std::string> modality;     // derived from the datasets when empty
  std::vector<std::string> label_names;  // index = label id
  std::optional<int64_t> sample_rate;    // Hz, required when `audio` exists
  std::string created_by;
};

// The shape and type of one dataset, as found in a file or about to be written.
struct DatasetLayout {
  std::string name;
  ElemType type = ElemType::kU8;
  std::vector<int64_t> shape;  // N first
};

// Every problem with a set of datasets against the table: unknown names, wrong
// dtype/rank, disagreeing N, audio without sample_rate/audio_length, ... Empty
// when all is well. Used by the writer before writing and by the reader on open.
std::vector<std::string> check_layouts(const std::vector<DatasetLayout>& layouts,
                                       const DatasetAttributes& attrs);

// The modality list implied by the datasets present, in table order.
std::vector<std::string> modalities_of(const std::vector<DatasetLayout>& layouts);

std::string shape_string(const std::vector<int64_t>& shape);  // "[2, 3]"

}  // namespace m4::data
