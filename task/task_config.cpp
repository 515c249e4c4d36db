// Task configs: a declarative schema table (types, required keys, defaults)
// drives override checking, unknown-key detection and default filling; the
// semantic checks (path vs modules, methods, ranges, prompt) follow it.
#include "task/task_config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/device.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/yaml_json.h"
#include "prompts/prompt_template.h"

namespace m4 {
namespace {

using json = nlohmann::json;

// kTargetList: LoRA targets, each a pattern string or {pattern, r?, alpha?} (peft/peft_config.h).
enum class Type { kString, kInt, kNumber, kBool, kStringList, kNumberList, kTargetList, kObject, kOpenMap };

struct Field {
  const char* path;
  Type type;
  bool required;
  json def;  // null = no default
};

// The whole schema, in documentation order (docs/tasks.md mirrors it). Defaults
// of peft.<method> fields are filled only when a component uses that method.
const std::vector<Field>& schema() {
  static const std::vector<Field> kFields = {
      {"task", Type::kString, true, nullptr},
      {"description", Type::kString, false, ""},
      {"path", Type::kInt, true, nullptr},
      {"modules", Type::kStringList, true, nullptr},
      {"trainable", Type::kOpenMap, true, nullptr},
      {"peft", Type::kObject, false, json::object()},
      {"peft.lora", Type::kObject, false, nullptr},
      {"peft.lora.r", Type::kInt, false, 8},
      {"peft.lora.alpha", Type::kNumber, false, 16.0},
      {"peft.lora.dropout", Type::kNumber, false, 0.0},
      {"peft.lora.rslora", Type::kBool, false, false},
      {"peft.lora.targets", Type::kTargetList, false, nullptr},  // default depends on trainable
      {"peft.prefix", Type::kObject, false, nullptr},
      {"peft.prefix.num_virtual_tokens", Type::kInt, false, 8},
      {"peft.prefix.projection_hidden", Type::kInt, false, 0},
      {"peft.prompt", Type::kObject, false, nullptr},
      {"peft.prompt.num_virtual_tokens", Type::kInt, false, 8},
      {"peft.prompt.init_text", Type::kString, false, ""},
      {"peft.init_from", Type::kString, false, ""},
      // Read by m4_peft with its own defaults (projector linear, head classifier);
      // declared here so configs may set them and typos are still caught.
      {"peft.seed", Type::kInt, false, nullptr},
      {"peft.projector", Type::kObject, false, nullptr},
      {"peft.projector.kind", Type::kString, false, nullptr},
      {"peft.projector.hidden", Type::kInt, false, nullptr},
      {"peft.head", Type::kObject, false, nullptr},
      {"peft.head.kind", Type::kString, false, nullptr},
      {"peft.head.classes", Type::kInt, false, nullptr},
      {"peft.head.hidden", Type::kInt, false, nullptr},
      {"prompt", Type::kString, false, nullptr},  // required unless no module on the path reads text
      {"data", Type::kObject, true, nullptr},
      {"data.train", Type::kString, true, nullptr},
      {"data.test", Type::kString, true, nullptr},
      {"data.user_supplied", Type::kBool, false, false},
      {"data.prepare", Type::kString, false, ""},
      {"data.note", Type::kString, false, ""},
      {"metric", Type::kString, true, nullptr},
      {"optim", Type::kObject, false, json::object()},
      {"optim.lr", Type::kNumber, false, 1e-3},
      {"optim.weight_decay", Type::kNumber, false, 0.01},
      {"optim.betas", Type::kNumberList, false, json::array({0.9, 0.999})},
      {"optim.eps", Type::kNumber, false, 1e-8},
      {"optim.schedule", Type::kString, false, "cosine"},
      {"optim.warmup_steps", Type::kInt, false, 0},
      {"optim.clip_grad_norm", Type::kNumber, false, 1.0},
      {"train", Type::kObject, false, json::object()},
      {"train.batch_size", Type::kInt, false, 16},
      {"train.grad_accum", Type::kInt, false, 1},
      {"train.steps", Type::kInt, false, 200},
      {"train.eval_every", Type::kInt, false, 50},
      {"train.seed", Type::kInt, false, 0},
      {"train.precision", Type::kString, false, "f32"},
      {"train.device", Type::kString, false, "auto"},
  };
  return kFields;
}

const Field* find_field(const std::string& path) {
  for (const auto& f : schema()) {
    if (path == f.path) return &f;
  }
  return nullptr;
}

std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::vector<std::string> children_of(const std::string& parent) {
  std::vector<std::string> out;
  for (const auto& f : schema()) {
    const std::string p = f.path;
    if (parent_of(p) == parent) out.push_back(parent.empty() ? p : p.substr(parent.size() + 1));
  }
  return out;
}

std::string unknown_key(const std::string& path) {
  const std::string parent = parent_of(path);
  return "unknown key '" + path + "' (known" + (parent.empty() ? "" : " under " + parent) + ": " +
         join(children_of(parent)) + ")";
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kString: return "a string";
    case Type::kInt: return "an integer";
    case Type::kNumber: return "a number";
    case Type::kBool: return "true or false";
    case Type::kStringList: return "a list of strings";
    case Type::kNumberList: return "a list of numbers";
    case Type::kTargetList: return "a list of patterns (or {pattern, r, alpha})";
    case Type::kObject:
    case Type::kOpenMap: return "a mapping";
  }
  return "?";
}

// A value as YAML spells it: json writes NaN and infinities as null.
std::string yaml_text(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double d = v.get<double>();
    return std::isnan(d) ? ".nan" : d > 0 ? ".inf" : "-.inf";
  }
  return v.dump();
}

std::string describe(const json& v) {
  std::string kind = v.is_string() ? "string" : v.is_boolean() ? "bool" : v.is_number() ? "number"
                   : v.is_array() ? "list" : v.is_object() ? "mapping" : "null";
  std::string text = yaml_text(v);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return kind + " " + text;
}

bool integral(const json& v) {
  if (v.is_number_integer()) return true;
  // `steps: 1e3` reads as a float; accept it when it is a whole number.
  return v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>() &&
         std::fabs(v.get<double>()) < 9e15;
}

bool type_ok(Type t, const json& v) {
  switch (t) {
    case Type::kString: return v.is_string();
    case Type::kInt: return integral(v);
    case Type::kNumber: return v.is_number();
    case Type::kBool: return v.is_boolean();
    case Type::kStringList:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); });
    case Type::kNumberList:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); });
    case Type::kTargetList:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) {
        if (x.is_string()) return true;
        if (!x.is_object() || !x.contains("pattern") || !x["pattern"].is_string()) return false;
        for (const auto& [k, e] : x.items()) {
          const bool ok = k == "pattern" || (k == "r" && integral(e)) || (k == "alpha" && e.is_number());
          if (!ok) return false;
        }
        return true;
      });
    case Type::kObject:
    case Type::kOpenMap: return v.is_object();
  }
  return false;
}

// Unknown keys and types, recursively; a badly typed value is removed so that
// later checks see it as absent instead of tripping over it.
void check_shape(json& obj, const std::string& prefix, std::vector<std::string>& problems,
                 std::set<std::string>& dropped) {
  std::vector<std::string> drop;
  for (auto& [k, v] : obj.items()) {
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    const Field* f = find_field(path);
    if (!f) {
      problems.push_back(unknown_key(path));
      drop.push_back(k);
      continue;
    }
    if (!type_ok(f->type, v)) {
      problems.push_back(path + ": expected " + type_name(f->type) + " (got " + describe(v) + ")");
      drop.push_back(k);
      continue;
    }
    if (f->type == Type::kObject) check_shape(v, path, problems, dropped);
    if (f->type == Type::kOpenMap) {
      for (const auto& [ck, cv] : v.items()) {
        if (!cv.is_string()) problems.push_back(path + "." + ck + ": expected a string (got " + describe(cv) + ")");
      }
    }
  }
  for (const auto& k : drop) {
    obj.erase(k);
    dropped.insert(prefix.empty() ? k : prefix + "." + k);
  }
}

json* lookup(json& root, const std::string& path) {
  json* cur = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object() || !cur->contains(key)) return nullptr;
    cur = &(*cur)[key];
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

bool is_encoder(const std::string& m) {
  return m == "img_enc" || m == "aud_b_enc" || m == "aud_i_enc" || m == "imu_enc";
}

bool valid_id(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// One config's validation, section by section. Each section appends its
// problems and fills its part of the TaskConfig; later sections only look at
// what earlier ones found valid (path_ok, ...), so one mistake is reported once.
class Checker {
 public:
  Checker(json& j, const std::filesystem::path& repo_root, const PromptTemplate* given_prompt = nullptr)
      : j(j), repo_root(repo_root), given_prompt(given_prompt) {}

  TaskConfig run() {
    std::set<std::string> dropped;  // badly typed: already reported, not "missing" too
    check_shape(j, "", problems, dropped);
    for (const auto& f : schema()) {
      const std::string parent = parent_of(f.path);
      if (f.required && (parent.empty() || lookup(j, parent)) && !lookup(j, f.path) && !dropped.count(f.path)) {
        problems.push_back(std::string("missing required key '") + f.path + "'");
      }
    }
    ids();
    path_and_modules();
    trainable();
    peft();
    data();
    metric();
    optim_and_train();
    prompt();
    return c;
  }

  std::vector<std::string> problems;

 private:
  std::string str(const char* p) {
    json* v = lookup(j, p);
    return v ? v->get<std::string>() : std::string();
  }
  double num(const char* p) {
    json* v = lookup(j, p);
    return v ? v->get<double>() : 0.0;
  }
  void range(const char* p, bool ok, const std::string& rule) {
    if (lookup(j, p) && !ok) problems.push_back(std::string(p) + " must be " + rule + " (got " + yaml_text(*lookup(j, p)) + ")");
  }
  bool has(const std::string& m) const { return std::find(c.modules.begin(), c.modules.end(), m) != c.modules.end(); }

  void ids() {
    c.task = str("task");
    c.description = str("description");
    c.prompt = str("prompt");
    if (json* v = lookup(j, "task"); v && !valid_id(c.task)) {
      problems.push_back("task: '" + c.task + "' is not an id (lower-case letters, digits, '_')");
    }
  }

  void path_and_modules() {
    // Path and modules (paper §3.3).
    if (json* v = lookup(j, "path")) {
      const int64_t p = static_cast<int64_t>(v->get<double>());
      if (p < 1 || p > 3) {
        problems.push_back("path must be 1, 2 or 3 (got " + std::to_string(p) + ")" +
                           (p == 4 ? " (Path-4, a generator alone, is not trained by m4forge)" : ""));
      } else {
        c.path = static_cast<int>(p);
        path_ok = true;
      }
    }
    if (json* v = lookup(j, "modules")) {
      modules_ok = true;
      for (const auto& m : *v) {
        const std::string name = m.get<std::string>();
        if (std::find(known_modules().begin(), known_modules().end(), name) == known_modules().end()) {
          problems.push_back("modules: unknown module '" + name + "' (known: " + join(known_modules()) + ")");
          modules_ok = false;
        } else if (std::find(c.modules.begin(), c.modules.end(), name) != c.modules.end()) {
          problems.push_back("modules: '" + name + "' listed twice");
        } else {
          c.modules.push_back(name);
        }
      }
    }
    const bool any_encoder = std::any_of(c.modules.begin(), c.modules.end(), is_encoder);
    if (path_ok && modules_ok) {
      const std::string mods = "(modules: " + join(c.modules) + ")";
      if (c.path == 1 && !(any_encoder && has("backbone") && !has("txt_enc"))) {
        problems.push_back("modules: Path-1 needs an encoder (img_enc, aud_b_enc, aud_i_enc or imu_enc) and backbone, "
                           "and no txt_enc (text goes to the backbone) " + mods);
      }
      // Path-2 aligns an encoder with txt_enc; the one exception is same-modality
      // retrieval (image retrieval, re-identification), ranked by recall@k.
      const bool retrieval = lookup(j, "metric") && lookup(j, "metric")->get<std::string>().rfind("recall@", 0) == 0;
      if (c.path == 2 && !(any_encoder && !has("backbone") && (has("txt_enc") || retrieval))) {
        problems.push_back("modules: Path-2 needs txt_enc plus an encoder to align with it (or, for recall@k "
                           "retrieval, an encoder alone), and no backbone " + mods);
      }
      if (c.path == 3 && !(c.modules.size() == 1 && has("backbone"))) {
        problems.push_back("modules: Path-3 is the backbone alone on text: modules: [backbone] " + mods);
      }
    }
  }

  void trainable() {
    // Trainable components: modules on the path, plus projector (Paths 1, 2) and head (Paths 1, 3).
    const size_t problems_before_trainable = problems.size();
    if (json* v = lookup(j, "trainable")) {
      for (const auto& [comp, mv] : v->items()) {
        if (!mv.is_string()) continue;
        const std::string method = mv.get<std::string>();
        const std::string where_c = "trainable." + comp;
        const bool is_module =
            std::find(known_modules().begin(), known_modules().end(), comp) != known_modules().end();
        const bool is_part = comp == "projector" || comp == "head";
        if (!is_module && !is_part) {
          problems.push_back(where_c + ": unknown component (known: " + join(known_modules()) + ", projector, head)");
          continue;
        }
        if (std::find(known_methods().begin(), known_methods().end(), method) == known_methods().end()) {
          problems.push_back(where_c + ": unknown method '" + method + "' (known: " + join(known_methods()) + ")");
          continue;
        }
        // Two rules of m4_peft (peft/peft_config.cpp), checked here too so a config
        // that loads is one the PEFT library accepts.
        if (is_module && method == "full") {
          problems.push_back(where_c + ": 'full' would copy a firmware module into the adapter; use lora, prefix or prompt");
          continue;
        }
        if (is_module && method == "prompt" && comp != "backbone") {
          problems.push_back(where_c + ": prompt tuning prepends soft tokens to the backbone's input; use lora or prefix for " +
                             comp);
          continue;
        }
        if (method == "frozen") {
          // Stating `frozen` for something off the path is harmless documentation.
          if (is_module && !has(comp)) continue;
        } else if (is_module && modules_ok && !has(comp)) {
          problems.push_back(where_c + ": '" + method + "' but " + comp + " is not on this task's path (modules: " +
                             join(c.modules) + ")");
          continue;
        } else if (is_part && method != "full") {
          problems.push_back(where_c + ": method '" + method +
                             "' applies to firmware modules; projector and head are adapter parts (frozen or full)");
          continue;
        } else if (path_ok && comp == "projector" && c.path == 3) {
          problems.push_back(where_c + ": Path-3 has no projector (text goes straight to the backbone)");
          continue;
        } else if (path_ok && comp == "head" && c.path == 2) {
          problems.push_back(where_c + ": Path-2 has no head (labels are matched through txt_enc)");
          continue;
        }
        c.trainable[comp] = method;
        if (method == "lora" || method == "prefix" || method == "prompt") methods_used.insert(method);
      }
      // Everything on the path gets an entry, so consumers never guess a default.
      for (const auto& m : c.modules) c.trainable.emplace(m, "frozen");
      if (path_ok && c.path != 3) c.trainable.emplace("projector", "frozen");
      if (path_ok && c.path != 2) c.trainable.emplace("head", "frozen");
      // Only when the entries themselves were fine: "lorra" should not also read as "nothing to train".
      if (path_ok && modules_ok && problems.size() == problems_before_trainable && c.trained_components().empty()) {
        problems.push_back("trainable: every component is frozen; nothing to train");
      }
    }
  }

  void peft() {
    // PEFT sections: defaults for methods in use; a section nobody uses is a mistake.
    json& peft = j["peft"];
    if (!peft.is_object()) peft = json::object();
    for (const char* m : {"lora", "prefix", "prompt"}) {
      if (peft.contains(m) && !methods_used.count(m)) {
        problems.push_back(std::string("peft.") + m + ": given but no component in `trainable` uses " + m);
      }
      if (methods_used.count(m) && !peft.contains(m)) peft[m] = json::object();
    }
    if (methods_used.count("lora") && !peft["lora"].contains("targets")) {
      json targets = json::array();
      for (const auto& [comp, method] : c.trainable) {
        if (method == "lora") targets.push_back(comp + ".layers.*.self_attn.{q,v}_proj");
      }
      peft["lora"]["targets"] = targets;
    }
    // Generic defaults (optim, train, data, peft.<method>, ...).
    for (const auto& f : schema()) {
      if (f.def.is_null()) continue;
      const std::string parent = parent_of(f.path);
      json* pobj = parent.empty() ? &j : lookup(j, parent);
      if (!pobj) continue;
      const std::string leaf = parent.empty() ? std::string(f.path) : std::string(f.path).substr(parent.size() + 1);
      if (!pobj->contains(leaf)) (*pobj)[leaf] = f.def;
    }

    if (methods_used.count("lora")) {
      range("peft.lora.r", num("peft.lora.r") >= 1, ">= 1");
      range("peft.lora.alpha", num("peft.lora.alpha") > 0, "> 0");
      const double d = num("peft.lora.dropout");
      range("peft.lora.dropout", d >= 0 && d < 1, "in [0, 1)");
      if (json* t = lookup(j, "peft.lora.targets")) {
        if (t->empty()) problems.push_back("peft.lora.targets: empty (give at least one Linear-name pattern)");
        for (size_t i = 0; i < t->size(); ++i) {
          const json& rule = (*t)[i];
          const std::string pat = rule.is_string() ? rule.get<std::string>() : rule["pattern"].get<std::string>();
          if (rule.is_object() && rule.contains("r") && rule["r"].get<double>() < 1) {
            problems.push_back("peft.lora.targets[" + std::to_string(i) + "].r must be >= 1");
          }
          const std::string comp = pat.substr(0, pat.find('.'));
          auto it = c.trainable.find(comp);
          if (it == c.trainable.end() || it->second != "lora") {
            problems.push_back("peft.lora.targets[" + std::to_string(i) + "]: '" + pat + "' is in " + comp +
                               ", which is not set to lora in `trainable`");
          }
        }
      }
    }
    if (methods_used.count("prefix")) {
      range("peft.prefix.num_virtual_tokens", num("peft.prefix.num_virtual_tokens") >= 1, ">= 1");
      range("peft.prefix.projection_hidden", num("peft.prefix.projection_hidden") >= 0, ">= 0 (0 = no MLP)");
    }
    if (methods_used.count("prompt")) {
      range("peft.prompt.num_virtual_tokens", num("peft.prompt.num_virtual_tokens") >= 1, ">= 1");
    }
    if (json* k = lookup(j, "peft.projector.kind"); k && *k != "linear" && *k != "mlp") {
      problems.push_back("peft.projector.kind: unknown '" + k->get<std::string>() + "' (known: linear, mlp)");
    }
    if (json* k = lookup(j, "peft.head.kind"); k && *k != "classifier" && *k != "lm") {
      problems.push_back("peft.head.kind: unknown '" + k->get<std::string>() + "' (known: classifier, lm)");
    }
    for (const char* p : {"peft.projector.hidden", "peft.head.hidden", "peft.head.classes", "peft.seed"}) {
      range(p, num(p) >= 0, ">= 0");
    }
    if (path_ok && c.path == 1 && c.trainable.count("projector") && c.trainable["projector"] == "frozen" &&
        str("peft.init_from").empty()) {
      problems.push_back("trainable.projector: Path-1 needs a trained projector (full) unless peft.init_from provides one");
    }
    c.peft = peft;
  }

  void data() {
    // Data.
    c.data.train = str("data.train");
    c.data.test = str("data.test");
    c.data.prepare = str("data.prepare");
    c.data.note = str("data.note");
    if (json* v = lookup(j, "data.user_supplied")) c.data.user_supplied = v->get<bool>();
    if (lookup(j, "data.train") && c.data.train.empty()) problems.push_back("data.train: empty path");
    if (lookup(j, "data.test") && c.data.test.empty()) problems.push_back("data.test: empty path");
    if (c.data.user_supplied && c.data.note.empty()) {
      problems.push_back("data.note: say what the user must supply when data.user_supplied is true");
    }
  }

  void metric() {
    // Metric.
    if (json* v = lookup(j, "metric")) {
      metric_ok = parse_metric(v->get<std::string>(), &c.metric);
      if (!metric_ok) problems.push_back("metric: unknown '" + v->get<std::string>() + "' (known: " + known_metrics() + ")");
    }
  }

  void optim_and_train() {
    // Optimiser and training loop.
    c.optim.lr = num("optim.lr");
    c.optim.weight_decay = num("optim.weight_decay");
    c.optim.eps = num("optim.eps");
    c.optim.schedule = str("optim.schedule");
    c.optim.warmup_steps = static_cast<int64_t>(num("optim.warmup_steps"));
    c.optim.clip_grad_norm = num("optim.clip_grad_norm");
    range("optim.lr", std::isfinite(c.optim.lr) && c.optim.lr > 0, "> 0");
    range("optim.weight_decay", c.optim.weight_decay >= 0, ">= 0");
    range("optim.eps", c.optim.eps > 0, "> 0");
    range("optim.clip_grad_norm", c.optim.clip_grad_norm >= 0, ">= 0 (0 = off)");
    range("optim.warmup_steps", c.optim.warmup_steps >= 0, ">= 0");
    if (json* b = lookup(j, "optim.betas")) {
      const bool ok = b->size() == 2 && std::all_of(b->begin(), b->end(), [](const json& x) {
        return x.get<double>() >= 0 && x.get<double>() < 1;
      });
      if (!ok) problems.push_back("optim.betas must be two numbers in [0, 1) (got " + b->dump() + ")");
      else c.optim.beta1 = (*b)[0].get<double>(), c.optim.beta2 = (*b)[1].get<double>();
    }
    if (lookup(j, "optim.schedule") && c.optim.schedule != "cosine" && c.optim.schedule != "linear" &&
        c.optim.schedule != "constant") {
      problems.push_back("optim.schedule: unknown '" + c.optim.schedule + "' (known: cosine, linear, constant)");
    }
    c.train.batch_size = static_cast<int64_t>(num("train.batch_size"));
    c.train.grad_accum = static_cast<int64_t>(num("train.grad_accum"));
    c.train.steps = static_cast<int64_t>(num("train.steps"));
    c.train.eval_every = static_cast<int64_t>(num("train.eval_every"));
    c.train.seed = static_cast<int64_t>(num("train.seed"));
    c.train.precision = str("train.precision");
    c.train.device = str("train.device");
    range("train.batch_size", c.train.batch_size >= 1, ">= 1");
    range("train.grad_accum", c.train.grad_accum >= 1, ">= 1");
    range("train.steps", c.train.steps >= 1, ">= 1");
    range("train.eval_every", c.train.eval_every >= 0, ">= 0 (0 = only at the end)");
    range("train.seed", c.train.seed >= 0, ">= 0");
    if (lookup(j, "optim.warmup_steps") && lookup(j, "train.steps") && c.train.steps >= 1 &&
        c.optim.warmup_steps > c.train.steps) {
      problems.push_back("optim.warmup_steps (" + std::to_string(c.optim.warmup_steps) + ") exceeds train.steps (" +
                         std::to_string(c.train.steps) + ")");
    }
    if (lookup(j, "train.precision") && c.train.precision != "f32" && c.train.precision != "bf16") {
      problems.push_back("train.precision: unknown '" + c.train.precision + "' (known: f32, bf16)");
    }
    if (const auto& d = device_names(); std::find(d.begin(), d.end(), c.train.device) == d.end()) {
      problems.push_back("train.device: unknown '" + c.train.device + "' (known: auto, cpu, cuda)");
    }
  }

  void prompt() {
    // The prompt template, and whether it fits the path and metric.
    const bool reads_text = has("txt_enc") || has("backbone");
    if (modules_ok && reads_text && !lookup(j, "prompt")) {
      problems.push_back("missing required key 'prompt' (" + join(c.modules) + " read a prompt)");
    }
    if (modules_ok && !c.modules.empty() && !reads_text && lookup(j, "prompt")) {
      problems.push_back("prompt: no module on this path reads text (modules: " + join(c.modules) + ")");
    }
    if (lookup(j, "prompt")) {
      try {
        // A bundle carries its template; the repo's copy may differ or be absent.
        const PromptTemplate t = given_prompt ? *given_prompt : load_prompt_template(repo_root, c.prompt);
        if (path_ok && c.path == 2 && !t.has_module(PromptModule::kTextEncoder)) {
          problems.push_back("prompt: Path-2 needs an [E] segment in template '" + c.prompt + "' (txt_enc input)");
        }
        if (path_ok && c.path != 2 && !t.has_module(PromptModule::kBackbone)) {
          problems.push_back("prompt: Path-" + std::to_string(c.path) + " needs a [B] segment in template '" +
                             c.prompt + "' (backbone input)");
        }
        if (metric_ok) {
          const MetricKind k = c.metric.kind;
          const bool text_metric = k == MetricKind::kBleu || k == MetricKind::kWer || k == MetricKind::kTokenF1;
          if (text_metric && t.answer != AnswerRule::kFreeText) {
            problems.push_back("metric: " + c.metric.name() + " scores generated text; template '" + c.prompt +
                               "' needs answer: free_text (has " + answer_rule_name(t.answer) + ")");
          }
          if (k == MetricKind::kMae && t.answer != AnswerRule::kNumber) {
            problems.push_back("metric: mae needs answer: number in template '" + c.prompt + "'");
          }
          if ((k == MetricKind::kAccuracy || k == MetricKind::kMacroF1) &&
              (t.answer == AnswerRule::kFreeText || t.answer == AnswerRule::kNumber)) {
            problems.push_back("metric: " + c.metric.name() + " compares labels; template '" + c.prompt +
                               "' has answer: " + answer_rule_name(t.answer));
          }
          if (k == MetricKind::kRecallAtK && path_ok && c.path != 2) {
            problems.push_back("metric: recall@k is for Path-2 retrieval (got Path-" + std::to_string(c.path) + ")");
          }
        }
      } catch (const Error& e) {
        problems.push_back(std::string("prompt: ") + e.what());
      }
    }
  }

  json& j;
  const std::filesystem::path& repo_root;
  const PromptTemplate* given_prompt;
  TaskConfig c;
  bool path_ok = false, modules_ok = false, metric_ok = false;
  std::set<std::string> methods_used;  // lora / prefix / prompt
};

}  // namespace

const std::vector<std::string>& known_modules() {
  static const std::vector<std::string> k = {"img_enc", "txt_enc", "aud_b_enc", "aud_i_enc", "imu_enc", "backbone"};
  return k;
}

const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> k = {"frozen", "full", "lora", "prefix", "prompt"};
  return k;
}

std::vector<std::string> TaskConfig::trained_components() const {
  std::vector<std::string> out;
  for (const auto& [c, m] : trainable) {
    if (m != "frozen") out.push_back(c);
  }
  return out;
}

void apply_override(json& j, const std::string& text) {
  const size_t eq = text.find('=');
  M4_CHECK(eq != std::string::npos && eq > 0, ErrorCode::kInvalidArgument, "override '", text,
           "': expected key=value, e.g. optim.lr=1e-4");
  const std::string key = text.substr(0, eq);
  const std::string where = "override '" + text + "'";
  // trainable.<component> is an open map; everything else must be in the schema.
  const bool in_schema = find_field(key) != nullptr ||
                         (parent_of(key) == "trainable" && key.size() > std::string("trainable.").size());
  M4_CHECK(in_schema, ErrorCode::kInvalidArgument, where, ": ", unknown_key(key));
  json value = parse_yaml_value(text.substr(eq + 1), where);
  json* cur = &j;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*cur)[part] = std::move(value);
      return;
    }
    if (!cur->contains(part)) (*cur)[part] = json::object();
    cur = &(*cur)[part];
    M4_CHECK(cur->is_object(), ErrorCode::kInvalidArgument, where, ": '", key.substr(0, dot),
             "' is not a mapping in the config");
    start = dot + 1;
  }
}

namespace {
TaskConfig task_config_from_json_impl(json j, const std::vector<std::string>& overrides,
                                      const std::filesystem::path& repo_root, const PromptTemplate* prompt,
                                      const std::string& where) {
  if (!j.is_object()) check_problems({"expected a mapping (task, path, modules, ...)"}, where);
  {
    std::vector<std::string> bad;
    for (const auto& o : overrides) {
      try {
        apply_override(j, o);
      } catch (const Error& e) {
        bad.push_back(e.what());
      }
    }
    check_problems(bad, where, ErrorCode::kInvalidArgument);
  }

  Checker checker(j, repo_root, prompt);
  TaskConfig c = checker.run();
  if (prompt && c.prompt != prompt->id)
    checker.problems.push_back("prompt: config names template '" + c.prompt + "' but the given template is '" + prompt->id + "'");
  check_problems(checker.problems, where);
  j["trainable"] = c.trainable;
  c.resolved = j;
  return c;
}
}  // namespace

TaskConfig task_config_from_json(json j, const std::vector<std::string>& overrides,
                                 const std::filesystem::path& repo_root, const std::string& where) {
  return task_config_from_json_impl(std::move(j), overrides, repo_root, nullptr, where);
}

TaskConfig task_config_from_json(json j, const PromptTemplate& prompt, const std::string& where) {
  return task_config_from_json_impl(std::move(j), {}, {}, &prompt, where);
}

TaskConfig load_task_config(const std::filesystem::path& path, const std::vector<std::string>& overrides,
                            const std::filesystem::path& repo_root) {
  TaskConfig c = task_config_from_json(read_yaml_file(path), overrides, repo_root, path.string());
  // The registry's id is the file name; a config that says otherwise was copied and not renamed.
  M4_CHECK(c.task == path.stem().string(), ErrorCode::kBadInput, path.string(), ": task '", c.task,
           "' does not match the file name '", path.filename().string(), "'");
  c.source = path;
  return c;
}

std::vector<TaskEntry> list_tasks(const std::filesystem::path& configs_dir) {
  M4_CHECK(std::filesystem::is_directory(configs_dir), ErrorCode::kIo, "no task config directory ",
           configs_dir.string());
  std::vector<TaskEntry> out;
  for (const auto& e : std::filesystem::directory_iterator(configs_dir)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back({e.path().stem().string(), e.path()});
  }
  std::sort(out.begin(), out.end(), [](const TaskEntry& a, const TaskEntry& b) { return a.id < b.id; });
  return out;
}

std::filesystem::path find_repo_root(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  for (fs::path p = fs::absolute(file).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (fs::is_directory(p / "prompts" / "templates")) return p;
  }
  return fs::current_path();
}

}  // namespace m4
