// TaskModel: per-path forward, loss and prediction over the loaded modules.
#include "task/task_model.h"

#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.h"
#include "data/dataset_format.h"
#include "firmware/clip.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/encoder_input.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/projector.h"
#include "firmware/tokenizer.h"
#include "peft/head.h"
#include "task/execution_path.h"
#include "task/lm_loss.h"

namespace m4 {
namespace {

constexpr double kCosineScale = 1.0 / 0.07;  // CLIP's initial logit scale (temperature 0.07): trainable from random heads
constexpr int64_t kIgnore = -100;
const LlamaForwardOptions kHiddenOnly{/*logits=*/false, /*hidden_states=*/true};

// The firmware modules a task loads, with the encoder slot it reads inputs through.
std::string input_encoder(const TaskConfig& t) {
  for (const auto& m : t.modules) {
    if (m != "backbone" && m != "txt_enc") return m;
  }
  return "";
}

}  // namespace

struct TaskModel::Impl {
  const Firmware& fw;
  TaskConfig task;
  PromptTemplate prompt;
  std::vector<std::string> labels;
  Adapter::Modules modules;
  std::unique_ptr<Adapter> adapter;
  std::shared_ptr<LlamaImpl> backbone;
  std::shared_ptr<const Tokenizer> tok;  // shared through a ModuleCache when there is one
  std::string encoder;
  std::shared_ptr<const ClipTokenizer> clip_tok;
  at::Tensor frozen_label_embeds;  // Path-2 with a frozen txt_enc: computed once
  int64_t max_new_tokens = 48;
  c10::Device device{c10::kCPU};  // where the modules, the adapter and every batch are (TaskModel::to)

  Impl(const Firmware& f, const TaskConfig& t, PromptTemplate p, std::vector<std::string> dataset_labels, ModuleCache* cache)
      : fw(f), task(t), prompt(std::move(p)) {
    if (prompt.labels_from_dataset || !prompt.labels.empty()) labels = prompt.labels_for(dataset_labels);  // else: generation
    for (const auto& m : task.modules) {
      M4_CHECK(fw.has(m), ErrorCode::kMismatch, task.source.string(), ": the task needs module ", m, ", which ",
               fw.label(), " does not have");
      modules[m] = cache ? cache->get(m) : load_firmware_module(fw, m);
    }
    encoder = input_encoder(task);
    if (modules.count("backbone")) {
      backbone = std::dynamic_pointer_cast<LlamaImpl>(modules.at("backbone"));
      if (fw.module("backbone").assets.count("tokenizer.model"))  // pre-tokenized data needs none
        tok = cache ? cache->tokenizer() : std::make_shared<const Tokenizer>(fw.tokenizer());
    }
    if (modules.count("txt_enc")) clip_tok = cache ? cache->clip_tokenizer() : std::make_shared<const ClipTokenizer>(fw.clip_tokenizer());
    nlohmann::json peft = task.peft;
    // A classifier head has one output per label.
    if (task.trainable.count("head") && task.trainable.at("head") == "full" &&
        peft.value("head", nlohmann::json::object()).value("kind", std::string("classifier")) == "classifier") {
      peft["head"]["classes"] = static_cast<int64_t>(labels.size());
    }
    const PeftConfig pc = PeftConfig::from_json({{"trainable", task.trainable}, {"peft", peft}}, task.source.string());
    std::vector<int64_t> init_ids;
    if (!pc.prompt.init_text.empty() && tok) init_ids = tok->encode(pc.prompt.init_text);
    adapter = std::make_unique<Adapter>(modules, pc, fw.label(), init_ids);
    for (const auto& l : labels) {
      if (tok) max_new_tokens = std::max<int64_t>(max_new_tokens, static_cast<int64_t>(tok->encode(l).size()) + 2);
    }
  }

  bool classification() const { return !labels.empty(); }

  // Encoder outputs for the batch's input modality.
  EncoderOutput encode(const Batch& b) {
    auto& m = modules.at(encoder);
    auto get = [&](const char* name) {
      const auto it = b.tensors.find(name);
      M4_CHECK(it != b.tensors.end(), ErrorCode::kMismatch, "task ", task.task, ": ", encoder, " reads '", name,
               "', which the dataset does not have");
      return it->second;
    };
    const EncoderInputSpec spec = encoder_input_spec(*m, encoder);
    return encode_features(*m, encoder_features(*m, get(spec.modality.c_str())));
  }

  // Path-2: the input's embedding in the shared space.
  at::Tensor input_embedding(const Batch& b) {
    EncoderOutput out = encode(b);
    if (auto* p = adapter->part("projector")) {
      at::Tensor pooled = out.pooler_output.defined() ? out.pooler_output : out.last_hidden_state.mean(1);
      return dynamic_cast<ProjectorImpl*>(p)->forward(pooled);
    }
    M4_CHECK(out.embeds.defined(), ErrorCode::kMismatch, "task ", task.task, ": ", encoder,
             " has no projection into the text space; train a projector (trainable.projector: full)");
    return out.embeds;
  }

  // txt_enc embeddings of `texts`; without gradients when txt_enc is frozen.
  at::Tensor text_embeddings(const std::vector<std::string>& texts) {
    M4_CHECK(modules.count("txt_enc") && clip_tok, ErrorCode::kMismatch, "task ", task.task,
             ": Path-2 needs txt_enc to embed its texts");
    auto* txt = dynamic_cast<ClipTextImpl*>(modules.at("txt_enc").get());
    ClipBatch cb = clip_tok->encode_batch(texts, txt->config().max_position_embeddings, false);
    std::optional<at::NoGradGuard> ng;
    if (!text_encoder_trained()) ng.emplace();
    return txt->forward(cb.input_ids.to(device), cb.attention_mask.to(device)).embeds;
  }
  bool text_encoder_trained() const { return task.trainable.count("txt_enc") && task.trainable.at("txt_enc") != "frozen"; }

  at::Tensor label_embeddings() {
    if (text_encoder_trained()) return text_embeddings(prompt.label_texts({}, labels));
    if (!frozen_label_embeds.defined()) frozen_label_embeds = text_embeddings(prompt.label_texts({}, labels)).detach();
    return frozen_label_embeds;
  }

  // Path-2 retrieval (no labels): each row's text, rendered by the [E]
  // segments, is a query whose right item is the row's input.
  bool retrieval() const { return task.path == 2 && labels.empty(); }
  at::Tensor query_embeddings(const Batch& b) {
    std::vector<std::string> texts;
    for (int64_t i = 0; i < b.size(); ++i) texts.push_back(prompt.render(PromptModule::kTextEncoder, vars_of(b, i)));
    return text_embeddings(texts);
  }

  PromptVars vars_of(const Batch& b, int64_t i) const {
    PromptVars v;
    for (const auto& [name, values] : b.texts) {
      if (name != "target_text") v[name] = values.at(i);
    }
    PromptVars declared;
    for (const auto& name : prompt.variables) {
      if (v.count(name)) declared[name] = v[name];
    }
    return declared;
  }

  std::string backbone_prompt(const Batch& b, int64_t i) const {
    return prompt.has_module(PromptModule::kBackbone) ? prompt.render(PromptModule::kBackbone, vars_of(b, i)) : "";
  }

  std::string target_of(const Batch& b, int64_t i) const {
    if (classification()) {
      const int64_t y = b.tensors.at("label")[i].item<int64_t>();
      return labels.at(y);
    }
    const auto it = b.texts.find("target_text");
    M4_CHECK(it != b.texts.end(), ErrorCode::kMismatch, "task ", task.task, ": generation needs 'target_text' in the dataset");
    return it->second.at(i);
  }

  int64_t pad() const { return std::max<int64_t>(tok->pad_id(), 0); }

  // Backbone inputs: bos + prompt (+ " " + target + eos when training), right-padded;
  // labels -100 except on target tokens. Left padding for generation.
  struct Seq {
    at::Tensor ids, mask, labels;
  };
  Seq sequences(const Batch& b, bool with_target) const {
    M4_CHECK(tok != nullptr, ErrorCode::kMismatch, fw.dir().string(), ": the backbone has no tokenizer.model, so task ",
             task.task, " needs pre-tokenized input_ids data");
    std::vector<std::vector<int64_t>> rows, labs;
    for (int64_t i = 0; i < b.size(); ++i) {
      std::vector<int64_t> ids;
      if (tok->bos_id() >= 0) ids.push_back(tok->bos_id());
      for (auto t : tok->encode(backbone_prompt(b, i))) ids.push_back(t);
      std::vector<int64_t> lab(ids.size(), kIgnore);
      if (with_target) {
        for (auto t : tok->encode(target_of(b, i))) {
          ids.push_back(t);
          lab.push_back(t);
        }
        if (tok->eos_id() >= 0) {
          ids.push_back(tok->eos_id());
          lab.push_back(tok->eos_id());
        }
      }
      rows.push_back(ids);
      labs.push_back(lab);
    }
    size_t T = 1;
    for (const auto& r : rows) T = std::max(T, r.size());
    const int64_t B = b.size();
    Seq s{at::full({B, static_cast<int64_t>(T)}, pad(), at::kLong), at::zeros({B, static_cast<int64_t>(T)}, at::kLong),
          at::full({B, static_cast<int64_t>(T)}, kIgnore, at::kLong)};
    for (int64_t i = 0; i < B; ++i) {
      const int64_t n = static_cast<int64_t>(rows[i].size());
      const int64_t off = with_target ? 0 : static_cast<int64_t>(T) - n;  // generation: left padding
      s.ids[i].narrow(0, off, n).copy_(at::tensor(rows[i], at::kLong));
      s.mask[i].narrow(0, off, n).fill_(1);
      s.labels[i].narrow(0, off, n).copy_(at::tensor(labs[i], at::kLong));
    }
    return {s.ids.to(device), s.mask.to(device), s.labels.to(device)};  // no copy on the CPU
  }

  // Path-1: projected encoder tokens (B, N, hidden) that go before the text.
  at::Tensor prefix(const Batch& b) {
    if (task.path != 1) return at::Tensor();
    EncoderOutput out = encode(b);
    auto* p = adapter->part("projector");
    M4_CHECK(p != nullptr, ErrorCode::kMismatch, "task ", task.task, ": Path-1 needs a projector (trainable.projector: full)");
    return dynamic_cast<ProjectorImpl*>(p)->forward(out.last_hidden_state);
  }

  // The backbone's hidden states for `s`, with Path-1's projected encoder
  // tokens `pre` in front when defined.
  LlamaOutput run_backbone(const Seq& s, const at::Tensor& pre) {
    if (!pre.defined()) return backbone->forward(s.ids, s.mask, {}, nullptr, kHiddenOnly);
    PrefixedInput p = prepend_prefix(*backbone, pre, s.ids, s.mask);
    return backbone->forward_embeds(p.inputs_embeds, p.attention_mask, p.position_ids, nullptr, kHiddenOnly);
  }

  at::Tensor head_logits(const Seq& s, const at::Tensor& pre) {
    const LlamaOutput out = run_backbone(s, pre);
    const at::Tensor& h = out.hidden_states.back();  // (B, T', hidden); T' - T = soft prompt tokens in front
    // The rows are left-padded (sequences(b, false)), so every row's last real
    // token is the last position: its final hidden state is the feature.
    at::Tensor feat = h.select(1, h.size(1) - 1);  // (B, hidden)
    return dynamic_cast<ClassifierHeadImpl*>(adapter->part("head"))->forward(feat);
  }

  bool has_classifier_head() const {
    return task.trainable.count("head") && task.trainable.at("head") == "full" && adapter->config().head.kind == "classifier";
  }

  at::Tensor loss(const Batch& b) {
    if (task.path == 3 && b.tensors.count("input_ids")) {
      // Pre-tokenized text: causal-LM loss on every real token (HF's labels = input_ids).
      const at::Tensor ids = b.tensors.at("input_ids");
      const auto m = b.tensors.find("attention_mask");
      const at::Tensor mask = m != b.tensors.end() ? m->second : at::ones_like(ids);
      return causal_lm_loss(backbone->forward(ids, mask, {}, nullptr, kHiddenOnly), ids.masked_fill(mask.eq(0), kIgnore));
    }
    if (retrieval()) {
      // Symmetric InfoNCE over the batch (CLIP's loss): row i's text and input match.
      at::Tensor logits = cosine_logits(query_embeddings(b), input_embedding(b), kCosineScale);
      const at::Tensor target = at::arange(b.size(), at::TensorOptions(at::kLong).device(device));
      return (at::cross_entropy_loss(logits, target) + at::cross_entropy_loss(logits.t(), target)) / 2.0;
    }
    if (task.path == 2) {
      at::Tensor logits = cosine_logits(input_embedding(b), label_embeddings(), kCosineScale);
      return at::cross_entropy_loss(logits, b.tensors.at("label"));
    }
    at::Tensor pre = prefix(b);
    if (has_classifier_head()) {
      return at::cross_entropy_loss(head_logits(sequences(b, false), pre), b.tensors.at("label"));
    }
    const Seq s = sequences(b, true);
    return causal_lm_loss(run_backbone(s, pre), s.labels);
  }

  // Next-token cross-entropy, mean over target tokens (labels != -100; HF's
  // shifted loss). Logits are computed only at the positions that predict a
  // target, not over the whole (B, T, vocab). Label rows may be shorter than
  // the output by the soft tokens in front (prefix / prompt tuning).
  at::Tensor causal_lm_loss(const LlamaOutput& out, at::Tensor labels) {
    const at::Tensor& h = out.hidden_states.back();  // (B, T', hidden), after the final norm
    const int64_t B = h.size(0), T = h.size(1), extra = T - labels.size(1);
    if (extra > 0) labels = at::cat({at::full({B, extra}, kIgnore, labels.options()), labels}, 1);
    const at::Tensor next = labels.narrow(1, 1, T - 1).reshape({-1});  // position t predicts token t + 1
    const at::Tensor rows = next.ne(kIgnore).nonzero().squeeze(1);
    M4_CHECK(rows.numel() > 0, ErrorCode::kMismatch, "task ", task.task,
             ": a training batch has no target tokens (empty target texts?); the loss would be NaN");
    const at::Tensor feats = h.narrow(1, 0, T - 1).reshape({-1, h.size(2)}).index_select(0, rows);
    return lm_loss(feats, next.index_select(0, rows));
  }

  // Cross-entropy of the LM head over `feats` rows, a block of rows at a time
  // (task/lm_loss.h); a LoRA-adapted, unmerged lm_head takes the whole logits.
  at::Tensor lm_loss(const at::Tensor& feats, const at::Tensor& targets) {
    if (auto* p = adapter->part("head"); p && adapter->config().head.kind == "lm") {
      return linear_cross_entropy(feats, dynamic_cast<LmHeadImpl*>(p)->weight, at::Tensor(), targets);
    }
    if (!backbone->lm_head) return linear_cross_entropy(feats, backbone->embed_tokens->weight, at::Tensor(), targets);
    const LinearImpl& head = *backbone->lm_head;
    if (head.adapter && !head.merged_weight.defined()) return at::cross_entropy_loss(lm_logits(feats), targets);
    return linear_cross_entropy(feats, head.effective_weight(feats), head.bias, targets);
  }

  // The trainable LM head when the task has one (head: full, kind lm), else the backbone's.
  at::Tensor lm_logits(const at::Tensor& h) {
    if (auto* p = adapter->part("head"); p && adapter->config().head.kind == "lm") {
      return dynamic_cast<LmHeadImpl*>(p)->forward(h).to(at::kFloat);
    }
    return backbone->logits_of(h);
  }

  at::Tensor probe(const Batch& b) {
    if (retrieval()) return cosine_logits(query_embeddings(b), input_embedding(b), kCosineScale);
    if (task.path == 2) return cosine_logits(input_embedding(b), label_embeddings(), kCosineScale);
    at::Tensor pre = prefix(b);
    if (has_classifier_head()) return head_logits(sequences(b, false), pre);
    if (b.tensors.count("input_ids")) {  // pre-tokenized (no tokenizer): every row is full length
      const at::Tensor& ids = b.tensors.at("input_ids");
      const LlamaOutput out = backbone->forward(ids, at::ones_like(ids), {}, nullptr, kHiddenOnly);
      const at::Tensor& h = out.hidden_states.back();  // soft prompt tokens, if any, in front
      return lm_logits(h.select(1, h.size(1) - 1));
    }
    // Left-padded: the last position is every row's last prompt token.
    const LlamaOutput out = run_backbone(sequences(b, false), pre);
    const at::Tensor& h = out.hidden_states.back();  // (B, T', hidden)
    return lm_logits(h.select(1, h.size(1) - 1));     // (B, vocab)
  }

  // One prediction per row of (B, L) label logits.
  std::vector<Prediction> classify(const at::Tensor& device_logits) const {
    const at::Tensor logits = device_logits.cpu();
    std::vector<Prediction> out(static_cast<size_t>(logits.size(0)));
    for (int64_t i = 0; i < logits.size(0); ++i) {
      auto& p = out[static_cast<size_t>(i)];
      p.label = logits[i].argmax().item<int64_t>();
      p.text = labels.at(p.label);
      at::Tensor row = logits[i].to(at::kFloat).contiguous();
      p.scores.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
    }
    return out;
  }

  std::vector<Prediction> predict(const Batch& b) {
    std::vector<Prediction> out(static_cast<size_t>(b.size()));
    M4_CHECK(!retrieval(), ErrorCode::kMismatch, "task ", task.task,
             " is retrieval: it ranks a whole collection (m4forge eval), not single inputs");
    if (task.path == 2) return classify(cosine_logits(input_embedding(b), label_embeddings(), kCosineScale));
    at::Tensor pre = prefix(b);
    if (has_classifier_head()) return classify(head_logits(sequences(b, false), pre));
    Seq s = sequences(b, false);
    GenerateOptions o;
    o.max_new_tokens = max_new_tokens;
    if (tok->eos_id() >= 0) o.stop_ids = {tok->eos_id()};
    o.pad_id = pad();
    const at::Tensor gen = generate(*backbone, s.ids, s.mask, o, pre).cpu();
    for (int64_t i = 0; i < b.size(); ++i) {
      std::vector<int64_t> ids;
      for (int64_t j = 0; j < gen.size(1); ++j) {
        const int64_t t = gen[i][j].item<int64_t>();
        if (t == tok->eos_id()) break;
        ids.push_back(t);
      }
      auto& p = out[static_cast<size_t>(i)];
      p.text = tok->decode(ids);
      if (classification()) p.label = prompt.parse_answer(p.text, labels).label;
    }
    return out;
  }
};

TaskModel::TaskModel(const Firmware& fw, const TaskConfig& task, PromptTemplate prompt, std::vector<std::string> label_names,
                     const std::filesystem::path& adapter_file, ModuleCache* modules)
    : impl_(std::make_unique<Impl>(fw, task, std::move(prompt), std::move(label_names), modules)) {
  M4_CHECK(modules == nullptr || &modules->firmware() == &fw, ErrorCode::kInternal, "TaskModel: module cache of another firmware");
  if (!adapter_file.empty()) impl_->adapter->load(adapter_file);
}

TaskModel::~TaskModel() = default;

Adapter& TaskModel::adapter() { return *impl_->adapter; }
const TaskConfig& TaskModel::task() const { return impl_->task; }
const std::vector<std::string>& TaskModel::labels() const { return impl_->labels; }
int64_t TaskModel::max_new_tokens() const { return impl_->max_new_tokens; }

std::vector<std::string> TaskModel::dataset_fields() const {
  std::vector<std::string> f;
  if (!impl_->encoder.empty()) f.push_back(encoder_input_spec(*impl_->modules.at(impl_->encoder), impl_->encoder).modality);
  if (impl_->classification()) {
    f.push_back(data::ds::kLabel);
  } else if (!retrieval()) {
    f.push_back("target_text");  // generation (check_dataset_fields also takes pre-tokenized input_ids)
  }
  return f;
}

void check_dataset_fields(const TaskModel& model, const data::DatasetReader& split, bool training) {
  for (const auto& field : model.dataset_fields()) {
    // Pre-tokenized causal-LM data trains on input_ids; evaluation needs the reference text.
    if (field == "target_text" && training && split.has("input_ids")) continue;  // pre-tokenized causal-LM data
    if (split.has(field)) continue;
    std::string has;
    for (const char* n : {"image", "audio", "imu", "text", "target_text", "label", "input_ids"}) {
      if (split.has(n)) has += (has.empty() ? "" : ", ") + std::string(n);
    }
    M4_FAIL(ErrorCode::kMismatch, split.path().string(), ": task ", model.task().task, " reads '", field,
            "', which this dataset does not have (it has: ", has.empty() ? "none of the known fields" : has, ")");
  }
}

at::Tensor TaskModel::loss(const Batch& batch) {
  impl_->adapter->train(true);
  return impl_->loss(to_device(batch, impl_->device));
}

void TaskModel::to(c10::Device device) {
  Impl& m = *impl_;
  if (device == m.device) return;
  // Module::to replaces each parameter's data in place, so every handle to it
  // (the adapter's, an optimizer's made later) sees the moved tensor.
  for (auto& [name, module] : m.modules) module->to(device);
  m.adapter->to(device);
  m.frozen_label_embeds = at::Tensor();
  m.device = device;
}

c10::Device TaskModel::device() const { return impl_->device; }

bool TaskModel::retrieval() const { return impl_->retrieval(); }

std::pair<at::Tensor, at::Tensor> TaskModel::retrieval_embeddings(const Batch& batch) {
  at::NoGradGuard ng;
  impl_->adapter->eval();
  M4_CHECK(impl_->retrieval(), ErrorCode::kInternal, "task ", impl_->task.task, " is not retrieval");
  const Batch b = to_device(batch, impl_->device);
  return {impl_->query_embeddings(b), impl_->input_embedding(b)};
}

Batch TaskModel::probe_inputs(int64_t n, uint64_t seed) const {
  M4_CHECK(n > 0 && n <= 64, ErrorCode::kInternal, "probe_inputs: n = ", n);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  for (int64_t i = 0; i < n; ++i) b.indices.push_back(i);
  const Impl& m = *impl_;
  if (!m.encoder.empty()) {
    const std::string modality = encoder_input_spec(*m.modules.at(m.encoder), m.encoder).modality;
    if (modality == "image") {
      b.tensors[modality] = at::randint(0, 256, {n, 3, 32, 32}, gen, at::kByte);
    } else if (modality == "audio") {
      b.tensors[modality] = at::randn({n, 16000}, gen, at::kFloat) * 0.1;  // 1 s at 16 kHz
    } else if (modality == "imu") {
      b.tensors[modality] = at::randn({n, 200, 6}, gen, at::kFloat);
    } else {
      M4_FAIL(ErrorCode::kInternal, "probe_inputs: no probe for modality ", modality);
    }
  }
  if (m.backbone && !m.tok) {
    b.tensors["input_ids"] = at::randint(0, m.backbone->config().vocab_size, {n, 8}, gen, at::kLong);
  }
  // A text for every template variable the inputs fill (the label is the model's to choose).
  static const char* kWords[] = {"the", "small", "red", "boat", "sails", "over", "a", "quiet", "lake", "at", "dawn", "while",
                                 "birds", "sing", "and", "children", "play", "near", "old", "trees"};
  for (const auto& v : m.prompt.variables) {
    if (v == "label") continue;
    auto& texts = b.texts[v];
    for (int64_t i = 0; i < n; ++i) {
      std::string t;
      const at::Tensor w = at::randint(0, 20, {6}, gen, at::kLong);
      for (int64_t k = 0; k < 6; ++k) {
        if (k) t += ' ';
        t += kWords[w[k].item<int64_t>()];
      }
      texts.push_back(t);
    }
  }
  return b;
}

at::Tensor TaskModel::probe(const Batch& batch) {
  at::NoGradGuard ng;
  impl_->adapter->eval();
  return impl_->probe(to_device(batch, impl_->device)).to(at::kFloat).cpu().contiguous();
}

std::string TaskModel::probe_output() const {
  const Impl& m = *impl_;
  if (m.retrieval()) return "query-item cosine logits";
  if (m.task.path == 2) return "label cosine logits";
  if (m.has_classifier_head()) return "classifier head logits";
  return "next-token logits at the end of the prompt";
}

int64_t TaskModel::keep_bf16_weights() {
  int64_t bytes = 0;
  for (auto& [name, m] : impl_->modules) bytes += m4::keep_bf16_weights(*m);
  return bytes;
}

std::vector<Prediction> TaskModel::predict(const Batch& batch) {
  at::NoGradGuard ng;
  impl_->adapter->eval();
  return impl_->predict(to_device(batch, impl_->device));
}

}  // namespace m4
