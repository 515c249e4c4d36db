// Multi-file (sharded) safetensors weight sets.
#include "firmware/weight_set.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"

namespace m4 {
namespace fs = std::filesystem;
using json = nlohmann::json;

WeightSet WeightSet::open(const std::vector<fs::path>& files) {
  WeightSet w;
  w.files_.reserve(files.size());
  for (const auto& f : files) w.files_.push_back(SafetensorsFile::open(f));
  for (size_t i = 0; i < w.files_.size(); ++i) {
    for (const auto& t : w.files_[i].tensors()) {
      auto [it, inserted] = w.index_.emplace(t.name, std::make_pair(i, &t));
      M4_CHECK(inserted, ErrorCode::kBadInput, w.files_[i].path().string(), ": tensor '", t.name,
               "' is also in ", w.files_[it->second.first].path().string());
    }
  }
  return w;
}

WeightSet WeightSet::open_hf_dir(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json j = read_json_file(index);
    M4_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
             ErrorCode::kBadInput, index.string(), ": missing object 'weight_map'");
    std::vector<std::string> shards;
    std::map<std::string, std::string> expected;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      M4_CHECK(it.value().is_string(), ErrorCode::kBadInput, index.string(), ": weight_map['",
               it.key(), "'] must be a file name");
      std::string shard = it.value();
      M4_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(),
               ErrorCode::kBadInput, index.string(), ": shard name '", shard,
               "' must be a plain file name in the same directory");
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
      expected[it.key()] = shard;
    }
    std::vector<fs::path> paths;
    for (const auto& s : shards) {
      M4_CHECK(fs::exists(dir / s), ErrorCode::kIo, index.string(), ": lists shard '", s,
               "', which does not exist");
      paths.push_back(dir / s);
    }
    WeightSet w = open(paths);
    for (const auto& [name, shard] : expected) {
      M4_CHECK(w.contains(name), ErrorCode::kBadInput, index.string(), ": tensor '", name,
               "' is not in its shard ", shard);
      M4_CHECK(w.file_of(name).path().filename() == shard, ErrorCode::kBadInput, index.string(),
               ": tensor '", name, "' is in ", w.file_of(name).path().filename().string(),
               ", not in ", shard, " as the index says");
    }
    for (const auto& name : w.names()) {
      M4_CHECK(expected.count(name) != 0, ErrorCode::kBadInput, w.file_of(name).path().string(),
               ": tensor '", name, "' is not listed in ", index.string());
    }
    return w;
  }
  M4_CHECK(fs::exists(single), ErrorCode::kIo, dir.string(),
           ": no model.safetensors or model.safetensors.index.json (hint: only safetensors "
           "checkpoints are read; convert .bin/.pth files first)");
  return open({single});
}

const TensorInfo& WeightSet::info(const std::string& name) const {
  auto it = index_.find(name);
  M4_CHECK(it != index_.end(), ErrorCode::kMismatch, "no tensor named '", name, "'");
  return *it->second.second;
}

const SafetensorsFile& WeightSet::file_of(const std::string& name) const {
  auto it = index_.find(name);
  M4_CHECK(it != index_.end(), ErrorCode::kMismatch, "no tensor named '", name, "'");
  return files_[it->second.first];
}

at::Tensor WeightSet::tensor(const std::string& name) const { return file_of(name).tensor(info(name)); }

std::vector<std::string> WeightSet::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [n, _] : index_) out.push_back(n);
  return out;
}

}  // namespace m4
