// Many verified adapters on one resident firmware (see adapter_host.h).
#include "serve/adapter_host.h"

#include <ctime>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <regex>

#include "bundle/bundle_reader.h"
#include "core/error.h"
#include "export/bundle_model.h"
#include "export/firmware_binding.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "task/task_model.h"

namespace m4 {
namespace fs = std::filesystem;

struct AdapterHost::Entry {
  HostedAdapter info;
  BundleModel bm;
};

namespace {

// What the task reads besides text: the input encoder's modality.
std::string modality_of(const TaskModel& m) {
  for (const auto& f : m.dataset_fields()) {
    if (f == "image" || f == "audio" || f == "imu") return f;
  }
  return "text";
}

}  // namespace

nlohmann::json HostedAdapter::to_json() const {
  return {{"name", name},       {"bundle", bundle.string()}, {"task", task},     {"path", path},
          {"modality", modality}, {"adapter_bytes", adapter_bytes}, {"canary", canary}, {"loaded_at", loaded_at}};
}

AdapterHost::AdapterHost(const Firmware& fw, std::vector<minisign::PublicKey> keys)
    : fw_(fw), keys_(std::move(keys)), modules_(std::make_unique<ModuleCache>(fw)) {
  M4_CHECK(!keys_.empty(), ErrorCode::kInvalidArgument, "a host needs at least one trusted public key");
}

AdapterHost::~AdapterHost() {
  std::lock_guard<std::mutex> t(table_);
  adapters_.clear();  // the models go before the modules they run on
}

HostedAdapter AdapterHost::load(const std::string& name, const fs::path& bundle) {
  static const std::regex kName("[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}");
  M4_CHECK(std::regex_match(name, kName), ErrorCode::kInvalidArgument, "adapter name '", name.substr(0, 80),
           "' must be 1-64 letters, digits, '_', '.', '-'");
  M4_CHECK(!has(name), ErrorCode::kInvalidArgument, "adapter '", name, "' is already loaded (unload it first)");
  // Signature, digests and binding need no model: outside the modules' lock.
  VerifiedBundle v = verify_bundle(bundle, keys_);
  check_binding(v.manifest, fw_, bundle.string());
  auto entry = std::make_shared<Entry>();
  {
    std::lock_guard<std::mutex> run(run_);
    entry->bm = open_bound_bundle_model(fw_, std::move(v), modules_.get());  // attaches, runs the canary
    entry->bm.model->adapter().detach();                                   // lent per request from now on
  }
  const BundleManifest& m = entry->bm.bundle.manifest;
  HostedAdapter& info = entry->info;
  info.name = name;
  info.bundle = bundle;
  info.task = m.task;
  info.path = m.path;
  info.modality = modality_of(*entry->bm.model);
  info.adapter_bytes = m.adapter_size;
  info.canary = entry->bm.canary ? entry->bm.canary->describe() : "none (a bundle made before canaries)";
  info.loaded_at = static_cast<int64_t>(std::time(nullptr));
  // The adapter's tensors now live in its model: the bundle's mapping can go.
  entry->bm.bundle.adapter = {};
  entry->bm.bundle.canary = {};
  entry->bm.bundle.file.reset();
#ifdef __GLIBC__
  // Loading parses, copies and runs the canary: give the freed scratch back to
  // the system, or glibc keeps it and every load grows the process (measured:
  // bench/README.md, serve_bench).
  malloc_trim(0);
#endif
  std::lock_guard<std::mutex> t(table_);
  M4_CHECK(adapters_.emplace(name, entry).second, ErrorCode::kInvalidArgument, "adapter '", name,
           "' is already loaded (unload it first)");
  return info;
}

bool AdapterHost::unload(const std::string& name) {
  std::shared_ptr<Entry> gone;
  {
    std::lock_guard<std::mutex> t(table_);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) return false;
    gone = std::move(it->second);
    adapters_.erase(it);
  }
  // A request holding the entry keeps it alive; its model is destroyed after, detached.
  std::lock_guard<std::mutex> run(run_);
  gone.reset();
  return true;
}

bool AdapterHost::has(const std::string& name) const {
  std::lock_guard<std::mutex> t(table_);
  return adapters_.count(name) != 0;
}

std::vector<HostedAdapter> AdapterHost::list() const {
  std::lock_guard<std::mutex> t(table_);
  std::vector<HostedAdapter> out;
  for (const auto& [n, e] : adapters_) out.push_back(e->info);
  return out;
}

HostPrediction AdapterHost::predict(const std::string& name, const data::Batch& input) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> t(table_);
    auto it = adapters_.find(name);
    M4_CHECK(it != adapters_.end(), ErrorCode::kInvalidArgument, "no adapter '", name.substr(0, 80), "' is loaded");
    e = it->second;
  }
  std::lock_guard<std::mutex> run(run_);
  Adapter& a = e->bm.model->adapter();
  a.attach();
  struct Detach {
    Adapter& a;
    ~Detach() { a.detach(); }
  } detach{a};
  std::vector<Prediction> preds = e->bm.model->predict(input);
  M4_CHECK(preds.size() == 1, ErrorCode::kInternal, "expected one prediction, got ", preds.size());
  return {preds[0].text, preds[0].label, preds[0].scores};
}

}  // namespace m4
