// What `m4forge export` bundles. From a run: the run record and the adapter
// alone (task/run_record.h), so the bundle carries exactly the config,
// template, labels and provenance the run trained with, whatever the
// repository or the datasets hold now. From an adapter and a task config (no
// run): the config and template read now, labels from the datasets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "export/bundle_writer.h"

namespace m4 {

// A finished run's record and RUN_DIR/adapter.safetensors; a run still going
// or interrupted is refused.
ExportRequest export_request_from_run(const std::filesystem::path& run_dir);

// An adapter file with the task config it was trained with (dotted overrides
// applied); the prompt template from the config's repository.
ExportRequest export_request_from_config(const std::filesystem::path& adapter_file, const std::filesystem::path& config,
                                         const std::vector<std::string>& overrides);

// The bundle's creation time: SOURCE_DATE_EPOCH when set (reproducible
// builds), else now.
int64_t bundle_creation_time();

}  // namespace m4
