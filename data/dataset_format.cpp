// The m4forge HDF5 dataset format: layout checks shared by writer and reader.
#include "data/dataset_format.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace m4::data {

const char* elem_type_name(ElemType t) {
  switch (t) {
    case ElemType::kU8: return "uint8";
    case ElemType::kI64: return "int64";
    case ElemType::kF32: return "float32";
    case ElemType::kString: return "string";
  }
  return "?";
}

const DatasetSpec* find_dataset_spec(std::string_view name) {
  for (const auto& s : kDatasetSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string known_dataset_names() {
  std::string out;
  for (const auto& s : kDatasetSpecs) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

std::vector<std::string> check_layouts(const std::vector<DatasetLayout>& layouts,
                                       const DatasetAttributes& attrs) {
  std::vector<std::string> problems;
  std::map<std::string, const DatasetLayout*> by_name;
  int64_t n = -1;
  std::string n_from;
  for (const auto& l : layouts) {
    const DatasetSpec* spec = find_dataset_spec(l.name);
    if (!spec) {
      problems.push_back("unknown dataset '" + l.name + "' (known: " + known_dataset_names() + ")");
      continue;
    }
    by_name[l.name] = &l;
    if (l.type != spec->type) {
      problems.push_back("dataset '" + l.name + "' has dtype " + elem_type_name(l.type) + ", expected " +
                         elem_type_name(spec->type));
    }
    if (static_cast<int>(l.shape.size()) != spec->rank) {
      problems.push_back("dataset '" + l.name + "' has shape " + shape_string(l.shape) + " (rank " +
                         std::to_string(l.shape.size()) + "), expected rank " + std::to_string(spec->rank) + " " +
                         spec->shape_doc);
      continue;
    }
    if (spec->last_dim && l.shape.back() != spec->last_dim) {
      problems.push_back("dataset '" + l.name + "' has shape " + shape_string(l.shape) + ", expected " +
                         spec->shape_doc);
    }
    if (n < 0) {
      n = l.shape[0];
      n_from = l.name;
    } else if (l.shape[0] != n) {
      problems.push_back("dataset '" + l.name + "' has " + std::to_string(l.shape[0]) + " samples but '" + n_from +
                         "' has " + std::to_string(n));
    }
  }
  if (layouts.empty()) problems.push_back("no datasets");
  if (n == 0) problems.push_back("no samples");
  auto has = [&](const char* name) { return by_name.count(name) > 0; };
  if (has(ds::kAudio) != has(ds::kAudioLength)) problems.push_back("'audio' and 'audio_length' must come together");
  if (has(ds::kAudio) && !attrs.sample_rate) problems.push_back("dataset 'audio' needs the attribute 'sample_rate'");
  if (attrs.sample_rate && *attrs.sample_rate <= 0) {
    problems.push_back("attribute 'sample_rate' is " + std::to_string(*attrs.sample_rate) + ", expected > 0");
  }
  if (has(ds::kInputIds) != has(ds::kAttentionMask)) {
    problems.push_back("'input_ids' and 'attention_mask' must come together");
  } else if (has(ds::kInputIds) && by_name[ds::kInputIds]->shape != by_name[ds::kAttentionMask]->shape) {
    problems.push_back("'attention_mask' has shape " + shape_string(by_name[ds::kAttentionMask]->shape) +
                       " but 'input_ids' has " + shape_string(by_name[ds::kInputIds]->shape));
  }
  if (has(ds::kLabel) && attrs.label_names.empty()) problems.push_back("dataset 'label' needs 'label_names'");
  // Images a model can take: gray or RGB, not empty (found here, not mid-training).
  if (has(ds::kImage) && by_name[ds::kImage]->shape.size() == 4) {
    const auto& sh = by_name[ds::kImage]->shape;
    if (sh[1] != 1 && sh[1] != 3) {
      problems.push_back("dataset 'image' has shape " + shape_string(sh) + ": " + std::to_string(sh[1]) +
                         " channels, expected 1 (gray) or 3 (RGB)");
    }
    if (sh[2] <= 0 || sh[3] <= 0) problems.push_back("dataset 'image' has shape " + shape_string(sh) + ": empty images");
  }
  return problems;
}

std::vector<std::string> modalities_of(const std::vector<DatasetLayout>& layouts) {
  std::vector<std::string> out;
  for (const auto& s : kDatasetSpecs) {
    if (!s.modality) continue;
    bool present = std::any_of(layouts.begin(), layouts.end(), [&](const auto& l) { return l.name == s.name; });
    if (present && std::find(out.begin(), out.end(), s.modality) == out.end()) out.push_back(s.modality);
  }
  return out;
}

}  // namespace m4::data
