// Canary probes: made at export, re-run wherever a bundle is loaded (see canary.h).
#include "export/canary.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "task/task_model.h"

namespace m4 {
namespace ck = canarykeys;
using nlohmann::json;

namespace {

std::string g3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

// max |a - b|; +inf where either is not finite (NaN never passes a check).
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor d = (a - b).abs();
  if (!d.isfinite().all().item<bool>()) return INFINITY;
  return d.numel() ? d.max().item<double>() : 0.0;
}

}  // namespace

Canary make_canary(TaskModel& trained) {
  const Batch in = trained.probe_inputs(ck::kProbes, ck::kSeed);
  const at::Tensor expected = trained.probe(in);
  trained.adapter().detach();
  const at::Tensor without = trained.probe(in);
  M4_CHECK(expected.isfinite().all().item<bool>(), ErrorCode::kMismatch, "task ", trained.task().task,
           ": the adapter's outputs on the canary probes are not finite (NaN or Inf)");
  NamedTensors tensors;
  for (const auto& [name, t] : in.tensors) tensors.emplace_back(ck::kInputPrefix + name, t);
  tensors.emplace_back(ck::kExpected, expected);
  tensors.emplace_back(ck::kBase, without);
  json texts = json::object();
  for (const auto& [name, values] : in.texts) texts[name] = values;
  Canary c;
  c.bytes = safetensors_bytes(tensors, {{ck::kTextsMetadata, texts.dump()}}, bundlekeys::kCanaryFile);
  c.entry.sha256 = "sha256:" + to_hex(sha256(c.bytes));
  c.entry.size = c.bytes.size();
  c.entry.probes = ck::kProbes;
  c.entry.seed = ck::kSeed;
  c.entry.output = trained.probe_output();
  c.entry.tolerance = ck::kRelativeTolerance * std::max(1.0, expected.abs().max().item<double>());
  c.entry.effect = max_abs_diff(expected, without);
  return c;
}

std::string CanaryResult::describe() const {
  switch (verdict) {
    case CanaryVerdict::kOk:
      return "ok: max |diff| " + g3(max_diff) + " <= tolerance " + g3(tolerance) + "; the adapter's effect " + g3(effect) +
             " at export" + (effect <= tolerance ? " (no measurable effect: was it trained?)" : ", " + g3(base_diff) + " now");
    case CanaryVerdict::kDrift:
      return "drift: max |diff| " + g3(max_diff) + " > tolerance " + g3(tolerance) +
             " from the outputs recorded at export (the adapter's effect was " + g3(effect) + ")";
    case CanaryVerdict::kNoEffect:
      return "no effect: the outputs are the firmware's own without the adapter (max |diff| " + g3(base_diff) +
             " <= tolerance " + g3(tolerance) + "), but the adapter changed them by " + g3(effect) + " at export";
  }
  return "";
}

CanaryResult run_canary(TaskModel& model, std::string_view bytes, const BundleManifest::Canary& entry, const std::string& where) {
  const std::string w = where + ": " + bundlekeys::kCanaryFile;
  const MemoryFile file(bytes);
  std::optional<SafetensorsFile> st;
  try {
    st.emplace(SafetensorsFile::open(file.path()));
  } catch (const Error& e) {
    throw file.renamed(e, w);
  }
  const int64_t n = entry.probes;
  auto output = [&](const char* name) {
    const TensorInfo* t = st->find(name);
    M4_CHECK(t != nullptr, ErrorCode::kBadInput, w, ": no '", name, "' tensor");
    M4_CHECK(t->dtype == DType::kF32 && t->shape.size() == 2 && t->shape[0] == n, ErrorCode::kBadInput, w, ": '", name,
             "' is ", dtype_name(t->dtype), " ", shape_str(t->shape), ", not F32 [", n, ", K]");
    return st->tensor(*t);
  };
  const at::Tensor expected = output(ck::kExpected), base = output(ck::kBase);
  M4_CHECK(expected.sizes() == base.sizes(), ErrorCode::kBadInput, w, ": '", ck::kExpected, "' and '", ck::kBase,
           "' differ in shape");
  Batch in;
  for (int64_t i = 0; i < n; ++i) in.indices.push_back(i);
  const std::string prefix = ck::kInputPrefix;
  for (const TensorInfo& t : st->tensors()) {
    if (t.name == ck::kExpected || t.name == ck::kBase) continue;
    // What probe_inputs writes: dtype and rank per input (imu's last dimension 6).
    static const std::map<std::string, std::pair<DType, size_t>> kInputs = {
        {"image", {DType::kU8, 4}}, {"audio", {DType::kF32, 2}}, {"imu", {DType::kF32, 3}}, {"input_ids", {DType::kI64, 2}}};
    const std::string name = t.name.rfind(prefix, 0) == 0 ? t.name.substr(prefix.size()) : "";
    const auto spec = kInputs.find(name);
    M4_CHECK(spec != kInputs.end(), ErrorCode::kBadInput, w, ": unexpected tensor '", t.name, "'");
    M4_CHECK(t.dtype == spec->second.first && t.shape.size() == spec->second.second && t.shape[0] == n &&
                 (name != "imu" || t.shape[2] == 6),
             ErrorCode::kBadInput, w, ": '", t.name, "' is ", dtype_name(t.dtype), " ", shape_str(t.shape), ", not ",
             dtype_name(spec->second.first), " with ", spec->second.second, " dimensions and ", n, " probes");
    in.tensors[name] = st->tensor(t);
  }
  const auto meta = st->metadata().find(ck::kTextsMetadata);
  if (meta != st->metadata().end()) {
    const json texts = json::parse(meta->second, nullptr, false);
    M4_CHECK(texts.is_object(), ErrorCode::kBadInput, w, ": metadata '", ck::kTextsMetadata, "' is not a JSON object");
    for (const auto& [name, values] : texts.items()) {
      M4_CHECK(values.is_array() && static_cast<int64_t>(values.size()) == n, ErrorCode::kBadInput, w, ": texts '", name,
               "' must be ", n, " strings");
      for (const auto& v : values) {
        M4_CHECK(v.is_string(), ErrorCode::kBadInput, w, ": texts '", name, "' must be strings");
        in.texts[name].push_back(v.get<std::string>());
      }
    }
  }
  at::Tensor now;
  try {
    now = model.probe(in);
  } catch (const Error& e) {
    M4_FAIL(e.code(), w, ": the probes do not run on this model: ", e.what());
  }
  M4_CHECK(now.sizes() == expected.sizes(), ErrorCode::kMismatch, w, ": the model gives ", shape_str(now.sizes().vec()),
           " outputs but the canary recorded ", shape_str(expected.sizes().vec()));
  CanaryResult r;
  r.tolerance = entry.tolerance;
  r.effect = entry.effect;
  r.max_diff = max_abs_diff(now, expected);
  r.base_diff = max_abs_diff(now, base);
  r.verdict = r.max_diff <= r.tolerance  ? CanaryVerdict::kOk
              : r.base_diff <= r.tolerance ? CanaryVerdict::kNoEffect
                                           : CanaryVerdict::kDrift;
  return r;
}

CanaryResult check_canary(TaskModel& model, std::string_view bytes, const BundleManifest::Canary& entry, const std::string& where) {
  const CanaryResult r = run_canary(model, bytes, entry, where);
  M4_CHECK(r.verdict == CanaryVerdict::kOk, ErrorCode::kMismatch, where, ": canary: ", r.describe());
  return r;
}

}  // namespace m4
