// `m4forge export`: describes an adapter against the firmware it was trained on
// (manifest), signs the manifest, and writes the three-entry tar atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bundle/bundle_manifest.h"
#include "bundle/minisign.h"
#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace m4 {

class Firmware;

struct ExportRequest {
  std::filesystem::path adapter_file;  // m4forge adapter safetensors (peft_config metadata)
  TaskConfig task;
  std::optional<PromptTemplate> prompt;
  std::vector<std::string> labels;  // verbalizer texts, label id order (may be empty)
  nlohmann::json dataset_digests = nlohmann::json::object();
  nlohmann::json training = nlohmann::json::object();
  nlohmann::json metrics = nlohmann::json::object();
  int64_t created = 0;  // unix seconds: manifest "created" and every tar mtime
  std::string trained_on;  // firmware_id the adapter was trained on (from a run record); "" when unknown
};

// Attaches the adapter to `fw` fail-closed (so a bundle can only be made for
// the firmware the adapter fits) and fills every manifest field.
BundleManifest describe_bundle(const Firmware& fw, const ExportRequest& req);

// Writes `out` (temp + fsync + rename; nothing else is written) with its
// canary (export/canary.h) when the task has a prompt template. Returns the manifest.
BundleManifest write_bundle(const std::filesystem::path& out, const Firmware& fw, const ExportRequest& req,
                            const minisign::SecretKey& key);

// Same bytes from an already-made manifest, adapter and canary bytes (used by
// tests to forge bundles that differ in one field, and by the bench). An empty
// `canary` writes no canary entry.
void write_bundle_file(const std::filesystem::path& out, const std::string& manifest_text, std::string_view adapter,
                       std::string_view canary, const std::string& signature_text, int64_t mtime);

}  // namespace m4
