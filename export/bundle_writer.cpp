// Bundle export (see bundle_writer.h). The adapter is mapped, hashed and copied
// into the archive once; the signature covers manifest.json, which pins the adapter's digest.
#include "export/bundle_writer.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "bundle/tar_archive.h"
#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "export/canary.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "task/task_model.h"

namespace m4 {
namespace k = bundlekeys;

namespace {

std::string_view view(const MappedFile& f) { return {reinterpret_cast<const char*>(f.data()), f.size()}; }

BundleManifest describe(const Firmware& fw, const ExportRequest& req, std::string_view adapter_bytes, ModuleCache& cache) {
  const std::string where = req.adapter_file.string();
  M4_CHECK(req.trained_on.empty() || req.trained_on == fw.id(), ErrorCode::kMismatch, where,
           ": the adapter was trained on firmware_id ", req.trained_on, " but ", fw.dir().string(), " is ", fw.label(),
           " (", fw.id(), ") (hint: export against the firmware the run trained on)");
  Adapter::Modules modules;
  for (const auto& n : req.task.modules) {
    M4_CHECK(fw.has(n), ErrorCode::kMismatch, where, ": the task needs module ", n, ", which ", fw.label(), " does not have");
    modules[n] = cache.get(n);
  }
  const auto adapter = Adapter::open_file(req.adapter_file, modules, fw.label());

  BundleManifest m;
  m.created = req.created;
  m.task = req.task.task;
  m.path = req.task.path;
  m.task_config = req.task.resolved;
  m.peft = adapter->config().to_json();
  if (req.prompt) {
    m.prompt_id = req.prompt->id;
    m.prompt_template = req.prompt->to_json();
  }
  m.labels = req.labels;
  m.firmware_id = fw.id();
  m.firmware_name = fw.manifest().name;
  m.firmware_version = fw.manifest().version;
  m.firmware_derived_from = fw.manifest().derived_from;
  std::set<std::string> mods;
  for (const auto& t : adapter->touched()) {
    m.touched.push_back({t.name, "", t.shape});
    mods.insert(t.name.substr(0, t.name.find('.')));
  }
  for (const auto& mod : mods) {
    if (fw.has(mod)) m.module_digests[mod] = fw.module(mod).digest;
  }
  m.adapter_sha256 = "sha256:" + to_hex(sha256(adapter_bytes));
  m.adapter_size = adapter_bytes.size();
  const SafetensorsFile st = SafetensorsFile::open(req.adapter_file);
  for (const auto& t : st.tensors()) m.adapter_tensors.push_back({t.name, dtype_name(t.dtype), t.shape});
  std::sort(m.adapter_tensors.begin(), m.adapter_tensors.end(),
            [](const BundleTensor& a, const BundleTensor& b) { return a.name < b.name; });
  m.provenance = {{k::kDatasetDigests, req.dataset_digests},
                  {k::kTraining, req.training},
                  {k::kMetrics, req.metrics},
                  {k::kM4forge, {{k::kVersion, m4forge_version()}, {k::kRevision, m4forge_revision()}}}};
  return m;
}

}  // namespace

BundleManifest describe_bundle(const Firmware& fw, const ExportRequest& req) {
  const auto file = MappedFile::open(req.adapter_file);
  ModuleCache cache(fw);
  return describe(fw, req, view(*file), cache);
}

BundleManifest write_bundle(const std::filesystem::path& out, const Firmware& fw, const ExportRequest& req,
                            const minisign::SecretKey& key) {
  M4_CHECK(out.extension() == ".m4adapter", ErrorCode::kInvalidArgument, out.string(),
           ": a bundle's file name must end in .m4adapter");
  const auto file = MappedFile::open(req.adapter_file);
  ModuleCache cache(fw);  // each module loaded once for the description and both canary models
  BundleManifest m = describe(fw, req, view(*file), cache);
  // The canary: the probes through the adapter, then without its hooks.
  Canary canary;
  if (req.prompt) {
    TaskModel trained(fw, req.task, *req.prompt, req.labels, req.adapter_file, &cache);
    canary = make_canary(trained);
    m.canary = canary.entry;
  }
  const std::string manifest = m.serialize();
  // The reader's limits apply to what we write, so we never make a bundle we would refuse.
  M4_CHECK(manifest.size() <= k::kMaxManifestBytes, ErrorCode::kInvalidArgument, out.string(), ": manifest.json would be ",
           manifest.size(), " bytes, over the ", k::kMaxManifestBytes, " limit");
  M4_CHECK(file->size() <= k::kMaxAdapterBytes, ErrorCode::kInvalidArgument, req.adapter_file.string(), ": ",
           file->size(), " bytes, over the bundle limit of ", k::kMaxAdapterBytes);
  write_bundle_file(out, manifest, view(*file), canary.bytes, minisign::sign(key, manifest, m.trusted_comment()), m.created);
  return m;
}

void write_bundle_file(const std::filesystem::path& out, const std::string& manifest_text, std::string_view adapter,
                       std::string_view canary, const std::string& signature_text, int64_t mtime) {
  AtomicFileWriter w(out);
  TarWriter tar(w, mtime);
  tar.add(k::kManifestFile, manifest_text);
  tar.add(k::kAdapterFile, adapter);
  if (!canary.empty()) tar.add(k::kCanaryFile, canary);
  tar.add(k::kSignatureFile, signature_text);
  tar.finish();
  w.commit();
}

}  // namespace m4
