// manifest.json of a bundle: writer and validating reader share bundlekeys.
#include "bundle/bundle_manifest.h"

#include <cmath>
#include <sstream>

#include "core/json_file.h"

namespace m4 {
namespace k = bundlekeys;
using json = nlohmann::json;

namespace {

json tensors_json(const std::vector<BundleTensor>& ts, bool with_dtype) {
  json a = json::array();
  for (const auto& t : ts) {
    json e = {{k::kName, t.name}, {k::kShape, t.shape}};
    if (with_dtype) e[k::kDtype] = t.dtype;
    a.push_back(std::move(e));
  }
  return a;
}

// Collects problems instead of throwing, so one error lists them all.
struct Reader {
  std::vector<std::string> problems;

  const json* get(const json& j, const std::string& path, const char* key, json::value_t type) {
    const std::string at = path.empty() ? key : path + "." + key;
    if (!j.is_object() || !j.contains(key)) {
      problems.push_back("missing '" + at + "'");
      return nullptr;
    }
    const json& v = j.at(key);
    const bool ok = type == json::value_t::number_float     ? v.is_number()
                    : type == json::value_t::number_integer ? v.is_number_integer()
                                                          : (type == json::value_t::number_unsigned ? v.is_number_unsigned()
                                                                                                     : v.type() == type);
    if (!ok) {
      problems.push_back("'" + at + "' has the wrong type");
      return nullptr;
    }
    return &v;
  }
  std::string str(const json& j, const std::string& path, const char* key) {
    const json* v = get(j, path, key, json::value_t::string);
    return v ? v->get<std::string>() : std::string();
  }
  std::vector<BundleTensor> tensors(const json& j, const std::string& path, const char* key, bool with_dtype) {
    std::vector<BundleTensor> out;
    const json* a = get(j, path, key, json::value_t::array);
    if (!a) return out;
    for (size_t i = 0; i < a->size(); ++i) {
      const json& e = (*a)[i];
      const std::string at = path + "." + key + "[" + std::to_string(i) + "]";
      BundleTensor t;
      t.name = str(e, at, k::kName);
      if (with_dtype) t.dtype = str(e, at, k::kDtype);
      if (const json* s = get(e, at, k::kShape, json::value_t::array)) {
        for (const auto& d : *s) {
          if (!d.is_number_integer() || d.get<int64_t>() < 0) {
            problems.push_back("'" + at + ".shape' must hold non-negative integers");
            break;
          }
          t.shape.push_back(d.get<int64_t>());
        }
      }
      out.push_back(std::move(t));
    }
    return out;
  }
};

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

json BundleManifest::to_json() const {
  json j;
  j[k::kFormat] = k::kFormatTag;
  j[k::kCreated] = created;
  j[k::kTask] = {{k::kTaskName, task}, {k::kTaskPath, path}, {k::kTaskConfig, task_config}};
  j[k::kPeft] = peft;
  j[k::kPrompt] = {{k::kPromptId, prompt_id}, {k::kPromptTemplate, prompt_template}, {k::kPromptLabels, labels}};
  j[k::kFirmware] = {{k::kFirmwareId, firmware_id},       {k::kFirmwareName, firmware_name},
                     {k::kFirmwareVersion, firmware_version}, {k::kModuleDigests, module_digests},
                     {k::kTouched, tensors_json(touched, false)}};
  if (!firmware_derived_from.is_null()) j[k::kFirmware][k::kDerivedFrom] = firmware_derived_from;
  j[k::kAdapter] = {{k::kName, k::kAdapterFile},
                    {k::kSha256, adapter_sha256},
                    {k::kSize, adapter_size},
                    {k::kTensors, tensors_json(adapter_tensors, true)}};
  if (canary) {
    j[k::kCanary] = {{k::kName, k::kCanaryFile},          {k::kSha256, canary->sha256},
                     {k::kSize, canary->size},            {k::kCanaryProbes, canary->probes},
                     {k::kCanarySeed, canary->seed},      {k::kCanaryOutput, canary->output},
                     {k::kCanaryTolerance, canary->tolerance}, {k::kCanaryEffect, canary->effect}};
  }
  j[k::kProvenance] = provenance;
  return j;
}

std::string BundleManifest::serialize() const { return to_json().dump(1) + "\n"; }

std::string BundleManifest::trusted_comment() const {
  return std::string(k::kCommentPrefix) + " task=" + task + " " + k::kCommentFirmwareId + firmware_id +
         " timestamp=" + std::to_string(created);
}

std::string firmware_id_in_comment(const std::string& trusted_comment) {
  std::istringstream in(trusted_comment);
  std::string word;
  const std::string key = k::kCommentFirmwareId;
  while (in >> word) {
    if (word.rfind(key, 0) == 0) return word.substr(key.size());
  }
  return "";
}

BundleManifest BundleManifest::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) check_problems({"expected a JSON object"}, where);
  Reader r;
  BundleManifest m;
  const std::string format = r.str(j, "", k::kFormat);
  // A newer format is refused outright: its other keys may mean something else.
  if (!format.empty() && format != k::kFormatTag)
    check_problems({"format '" + format + "' is not " + std::string(k::kFormatTag) + " (hint: a newer m4forge wrote it)"}, where);
  if (const json* c = r.get(j, "", k::kCreated, json::value_t::number_integer)) m.created = c->get<int64_t>();
  if (const json* t = r.get(j, "", k::kTask, json::value_t::object)) {
    m.task = r.str(*t, k::kTask, k::kTaskName);
    if (const json* p = r.get(*t, k::kTask, k::kTaskPath, json::value_t::number_integer)) m.path = p->get<int>();
    if (const json* c = r.get(*t, k::kTask, k::kTaskConfig, json::value_t::object)) m.task_config = *c;
  }
  if (const json* p = r.get(j, "", k::kPeft, json::value_t::object)) m.peft = *p;
  if (const json* p = r.get(j, "", k::kPrompt, json::value_t::object)) {
    m.prompt_id = r.str(*p, k::kPrompt, k::kPromptId);
    if (p->contains(k::kPromptTemplate)) m.prompt_template = p->at(k::kPromptTemplate);
    if (const json* l = r.get(*p, k::kPrompt, k::kPromptLabels, json::value_t::array)) {
      for (const auto& s : *l) {
        if (!s.is_string()) {
          r.problems.push_back("'prompt.labels' must hold strings");
          break;
        }
        m.labels.push_back(s.get<std::string>());
      }
    }
  }
  if (const json* f = r.get(j, "", k::kFirmware, json::value_t::object)) {
    m.firmware_id = r.str(*f, k::kFirmware, k::kFirmwareId);
    m.firmware_name = r.str(*f, k::kFirmware, k::kFirmwareName);
    m.firmware_version = r.str(*f, k::kFirmware, k::kFirmwareVersion);
    if (const json* d = r.get(*f, k::kFirmware, k::kModuleDigests, json::value_t::object)) {
      for (const auto& [mod, dig] : d->items()) {
        if (dig.is_string()) m.module_digests[mod] = dig.get<std::string>();
        else r.problems.push_back("'firmware.module_digests." + mod + "' must be a string");
      }
    }
    m.touched = r.tensors(*f, k::kFirmware, k::kTouched, false);
    if (f->contains(k::kDerivedFrom)) {
      const json& d = f->at(k::kDerivedFrom);
      if (!d.is_object() || !d.contains(k::kFirmwareId) || !d[k::kFirmwareId].is_string() ||
          d[k::kFirmwareId].get<std::string>().rfind("sha256:", 0) != 0)
        r.problems.push_back("'firmware.derived_from' must be an object with a sha256: 'firmware_id'");
      else m.firmware_derived_from = d;
    }
    if (m.firmware_id.rfind("sha256:", 0) != 0 && !m.firmware_id.empty())
      r.problems.push_back("'firmware.firmware_id' is not a sha256: digest");
  }
  if (const json* a = r.get(j, "", k::kAdapter, json::value_t::object)) {
    if (r.str(*a, k::kAdapter, k::kName) != k::kAdapterFile && a->contains(k::kName))
      r.problems.push_back(std::string("'adapter.name' must be ") + k::kAdapterFile);
    m.adapter_sha256 = r.str(*a, k::kAdapter, k::kSha256);
    if (const json* s = r.get(*a, k::kAdapter, k::kSize, json::value_t::number_unsigned)) m.adapter_size = s->get<uint64_t>();
    m.adapter_tensors = r.tensors(*a, k::kAdapter, k::kTensors, true);
    if (m.adapter_sha256.rfind("sha256:", 0) != 0 || m.adapter_sha256.size() != 7 + 64)
      r.problems.push_back("'adapter.sha256' is not a sha256:<64 hex> digest");
  }
  if (j.contains(k::kCanary)) {
    BundleManifest::Canary c;
    if (const json* a = r.get(j, "", k::kCanary, json::value_t::object)) {
      if (r.str(*a, k::kCanary, k::kName) != k::kCanaryFile && a->contains(k::kName))
        r.problems.push_back(std::string("'canary.name' must be ") + k::kCanaryFile);
      c.sha256 = r.str(*a, k::kCanary, k::kSha256);
      if (c.sha256.rfind("sha256:", 0) != 0 || c.sha256.size() != 7 + 64)
        r.problems.push_back("'canary.sha256' is not a sha256:<64 hex> digest");
      if (const json* v = r.get(*a, k::kCanary, k::kSize, json::value_t::number_unsigned)) c.size = v->get<uint64_t>();
      if (const json* v = r.get(*a, k::kCanary, k::kCanaryProbes, json::value_t::number_integer)) c.probes = v->get<int64_t>();
      if (c.probes < 1 || c.probes > 64) r.problems.push_back("'canary.probes' must be 1..64");
      if (const json* v = r.get(*a, k::kCanary, k::kCanarySeed, json::value_t::number_unsigned)) c.seed = v->get<uint64_t>();
      c.output = r.str(*a, k::kCanary, k::kCanaryOutput);
      if (const json* v = r.get(*a, k::kCanary, k::kCanaryTolerance, json::value_t::number_float)) c.tolerance = v->get<double>();
      if (const json* v = r.get(*a, k::kCanary, k::kCanaryEffect, json::value_t::number_float)) c.effect = v->get<double>();
      if (!(c.tolerance > 0) || !std::isfinite(c.tolerance)) r.problems.push_back("'canary.tolerance' must be a positive number");
      if (!(c.effect >= 0) || !std::isfinite(c.effect)) r.problems.push_back("'canary.effect' must be a non-negative number");
    }
    m.canary = c;
  }
  if (const json* p = r.get(j, "", k::kProvenance, json::value_t::object)) m.provenance = *p;
  check_problems(r.problems, where);
  return m;
}

}  // namespace m4
