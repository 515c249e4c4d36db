// Bundles opened as task models (see bundle_model.h).
#include "export/bundle_model.h"

#include "core/error.h"
#include "core/mapped_file.h"
#include "export/firmware_binding.h"
#include "firmware/firmware.h"
#include "prompts/prompt_template.h"

namespace m4 {
namespace fs = std::filesystem;


BundleModel open_bundle_model(const Firmware& fw, const fs::path& bundle, const minisign::PublicKey& key) {
  VerifiedBundle v = verify_bundle(bundle, &key);
  check_binding(v.manifest, fw, bundle.string());
  return open_bound_bundle_model(fw, std::move(v));
}

BundleModel open_bound_bundle_model(const Firmware& fw, VerifiedBundle bundle, ModuleCache* modules) {
  BundleModel out = build_bundle_model(fw, std::move(bundle), modules);
  const BundleManifest& m = out.bundle.manifest;
  if (m.canary) out.canary = check_canary(*out.model, out.bundle.canary, *m.canary, out.bundle.path.string());
  return out;
}

BundleModel build_bundle_model(const Firmware& fw, VerifiedBundle bundle_, ModuleCache* modules) {
  BundleModel out;
  out.bundle = std::move(bundle_);
  const fs::path& bundle = out.bundle.path;
  const BundleManifest& m = out.bundle.manifest;
  const std::string where = bundle.string() + ": manifest.json";
  M4_CHECK(m.prompt_template.is_object() && !m.prompt_id.empty(), ErrorCode::kBadInput, where,
           ": no prompt template (a model needs one)");
  const PromptTemplate prompt = parse_prompt_template(m.prompt_template, m.prompt_id, where);
  const TaskConfig task = task_config_from_json(m.task_config, prompt, where);
  const MemoryFile adapter(out.bundle.adapter);
  out.model = std::make_unique<TaskModel>(fw, task, prompt, m.labels, adapter.path(), modules);
  return out;
}

}  // namespace m4
