// Task configs: defaults, overrides, every validation problem class, multi-problem
// reporting, the registry, and every real file in configs/tasks + prompts/templates.
#include "task/task_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "prompts/prompt_template.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

using nlohmann::json;

// A throwaway repository root with three templates: Path-2 labels, Path-3
// head classification, and free-text generation.
class TaskConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(repo_ / "prompts/templates");
    std::filesystem::create_directories(repo_ / "configs/tasks");
    write("prompts/templates/pets.yaml",
          "template: \"[E] There is a photo of a {label}.\"\nvariables: [label]\nlabels: [cat, dog]\n");
    write("prompts/templates/topics.yaml",
          "template: \"[B] Topic of: {text}\"\nvariables: [text]\nlabels: {from_dataset: true}\n");
    write("prompts/templates/caption.yaml", "template: \"[B] Caption the image.\"\nanswer: free_text\n");
  }
  void write(const std::string& rel, const std::string& text) { std::ofstream(repo_ / rel) << text; }

  // The minimal valid Path-2 config, with `extra` lines appended / `drop` key removed.
  static std::string pets(const std::string& extra = "", const std::string& drop = "") {
    std::vector<std::pair<std::string, std::string>> lines = {
        {"task", "task: pets"},
        {"path", "path: 2"},
        {"modules", "modules: [img_enc, txt_enc]"},
        {"trainable", "trainable: {img_enc: lora, txt_enc: frozen}"},
        {"prompt", "prompt: pets"},
        {"data", "data: {train: d/train.h5, test: d/test.h5}"},
        {"metric", "metric: accuracy"},
    };
    std::string out = "# m4forge train configs/tasks/pets.yaml\n";
    for (const auto& [k, l] : lines) {
      if (k != drop && extra.find(k + ":") != 0 && extra.find("\n" + k + ":") == std::string::npos) out += l + "\n";
    }
    return out + extra;
  }

  TaskConfig load(const std::string& yaml, const std::vector<std::string>& overrides = {},
                  const std::string& name = "pets") {
    const auto path = repo_ / "configs/tasks" / (name + ".yaml");
    std::ofstream(path) << yaml;
    return load_task_config(path, overrides, repo_.path());
  }

  test::TempDir repo_;
};

TEST_F(TaskConfigTest, MinimalConfigGetsDocumentedDefaults) {
  const TaskConfig c = load(pets());
  EXPECT_EQ(c.task, "pets");
  EXPECT_EQ(c.path, 2);
  EXPECT_EQ(c.modules, (std::vector<std::string>{"img_enc", "txt_enc"}));
  // Every component on the path has an entry; projector defaults to frozen.
  EXPECT_EQ(c.trainable, (std::map<std::string, std::string>{
                             {"img_enc", "lora"}, {"txt_enc", "frozen"}, {"projector", "frozen"}}));
  EXPECT_EQ(c.trained_components(), (std::vector<std::string>{"img_enc"}));
  EXPECT_EQ(c.peft["lora"]["r"], 8);
  EXPECT_EQ(c.peft["lora"]["alpha"], 16.0);
  EXPECT_EQ(c.peft["lora"]["dropout"], 0.0);
  EXPECT_EQ(c.peft["lora"]["rslora"], false);
  EXPECT_EQ(c.peft["lora"]["targets"], json::parse(R"(["img_enc.layers.*.self_attn.{q,v}_proj"])"));
  EXPECT_EQ(c.peft["init_from"], "");
  EXPECT_FALSE(c.peft.contains("prefix"));  // only sections of methods in use
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.optim.beta1, 0.9);
  EXPECT_DOUBLE_EQ(c.optim.beta2, 0.999);
  EXPECT_DOUBLE_EQ(c.optim.eps, 1e-8);
  EXPECT_EQ(c.optim.schedule, "cosine");
  EXPECT_EQ(c.optim.warmup_steps, 0);
  EXPECT_DOUBLE_EQ(c.optim.clip_grad_norm, 1.0);
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.train.grad_accum, 1);
  EXPECT_EQ(c.train.steps, 200);
  EXPECT_EQ(c.train.eval_every, 50);
  EXPECT_EQ(c.train.seed, 0);
  EXPECT_EQ(c.train.precision, "f32");
  EXPECT_FALSE(c.data.user_supplied);
  EXPECT_EQ(c.metric.kind, MetricKind::kAccuracy);
  EXPECT_EQ(c.resolved["optim"]["lr"], 1e-3);
  EXPECT_EQ(c.resolved["trainable"]["projector"], "frozen");
  EXPECT_EQ(c.source, repo_ / "configs/tasks/pets.yaml");
}

TEST_F(TaskConfigTest, PeftDefaultsPerMethod) {
  const TaskConfig c = load(
      "task: topics\npath: 3\nmodules: [backbone]\ntrainable: {backbone: prefix, head: full}\nprompt: topics\n"
      "data: {train: a.h5, test: b.h5}\nmetric: macro_f1\n",
      {}, "topics");
  EXPECT_EQ(c.peft["prefix"], json::parse(R"({"num_virtual_tokens": 8, "projection_hidden": 0})"));
  EXPECT_FALSE(c.peft.contains("lora"));
  EXPECT_EQ(c.trainable.count("projector"), 0u);  // Path-3 has none
  EXPECT_EQ(c.trainable.at("head"), "full");
  const TaskConfig p = load(
      "task: topics\npath: 3\nmodules: [backbone]\ntrainable: {backbone: prompt}\nprompt: topics\n"
      "data: {train: a.h5, test: b.h5}\nmetric: accuracy\n",
      {}, "topics");
  EXPECT_EQ(p.peft["prompt"], json::parse(R"({"num_virtual_tokens": 8, "init_text": ""})"));
}

TEST_F(TaskConfigTest, PeftLibraryKeysAreAccepted) {
  // Keys m4_peft reads with its own defaults: accepted, type-checked, passed through.
  const TaskConfig c = load(pets(
      "peft: {seed: 3, projector: {kind: mlp, hidden: 64}, head: {kind: lm},\n"
      "       lora: {targets: [\"img_enc.layers.0.self_attn.q_proj\", {pattern: \"img_enc.layers.*.mlp.fc1\", r: 2, alpha: 4}]}}\n"));
  EXPECT_EQ(c.peft["projector"], json::parse(R"({"kind": "mlp", "hidden": 64})"));
  EXPECT_EQ(c.peft["lora"]["targets"][1]["r"], 2);
  EXPECT_EQ(c.peft["seed"], 3);
}

TEST_F(TaskConfigTest, OverridesApplyWithYamlTyping) {
  const TaskConfig c = load(pets("optim: {lr: 1.0e-3}\n"),
                            {"optim.lr=1e-4", "train.steps=7", "optim.warmup_steps=2", "peft.lora.r=4",
                             "peft.lora.targets=[\"img_enc.layers.0.mlp.fc1\"]", "trainable.txt_enc=lora",
                             "data.user_supplied=true", "data.note=bring your own", "metric=recall@5"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-4);
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.peft["lora"]["r"], 4);
  EXPECT_EQ(c.peft["lora"]["targets"], json::parse(R"(["img_enc.layers.0.mlp.fc1"])"));
  EXPECT_EQ(c.trainable.at("txt_enc"), "lora");
  EXPECT_TRUE(c.data.user_supplied);
  EXPECT_EQ(c.metric.kind, MetricKind::kRecallAtK);
  EXPECT_EQ(c.metric.k, 5);
  EXPECT_EQ(c.resolved["optim"]["lr"], 1e-4);
}

TEST_F(TaskConfigTest, BadOverrides) {
  test::expect_error([&] { load(pets(), {"optim.lrr=1e-4"}); },
                     {"pets.yaml", "override 'optim.lrr=1e-4'", "unknown key 'optim.lrr'", "known under optim: lr,"});
  test::expect_error([&] { load(pets(), {"colour=red"}); }, {"unknown key 'colour'", "known: task, description"});
  test::expect_error([&] { load(pets(), {"optim.lr"}); }, {"expected key=value"});
  test::expect_error([&] { load(pets(), {"optim.lr=abc"}); }, {"optim.lr: expected a number (got string \"abc\")"});
  test::expect_error([&] { load(pets(), {"train.steps=[1, 2]"}); }, {"train.steps: expected an integer (got list"});
  // Not-a-number and infinities are named as YAML spells them (json would say null).
  test::expect_error([&] { load(pets(), {"optim.lr=.nan"}); }, {"optim.lr must be > 0 (got .nan)"});
  test::expect_error([&] { load(pets(), {"optim.lr=-.inf"}); }, {"optim.lr must be > 0 (got -.inf)"});
  test::expect_error([&] { load(pets(), {"data.train.x=1"}); }, {"unknown key 'data.train.x'"});
  // Several bad overrides: all named in one message.
  test::expect_error([&] { load(pets(), {"a=1", "b.c=2"}); }, {"unknown key 'a'", "unknown key 'b.c'"});
}

TEST_F(TaskConfigTest, EveryProblemClassHasAMessage) {
  struct Case {
    std::string yaml;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {pets("", "task"), "missing required key 'task'"},
      {pets("", "metric"), "missing required key 'metric'"},
      {pets("", "data") + "data: {train: a.h5}\n", "missing required key 'data.test'"},
      {pets("", "prompt"), "missing required key 'prompt' (img_enc, txt_enc read a prompt)"},
      {pets("lerning_rate: 1\n"), "unknown key 'lerning_rate' (known: task, description, path,"},
      {pets("optim: {lr: 1, betass: [0.9, 0.99]}\n"), "unknown key 'optim.betass' (known under optim: lr,"},
      {pets("peft: {lora: {rank: 4}}\n"), "unknown key 'peft.lora.rank' (known under peft.lora: r, alpha,"},
      {pets("path: two\n"), "path: expected an integer (got string \"two\")"},
      {pets("path: 5\n"), "path must be 1, 2 or 3 (got 5)"},
      {pets("path: 4\n"), "(Path-4, a generator alone, is not trained by m4forge)"},
      {pets("modules: [img_enc, txt_enc, nose_enc]\n"), "modules: unknown module 'nose_enc' (known: img_enc,"},
      {pets("modules: [img_enc, img_enc, txt_enc]\n"), "modules: 'img_enc' listed twice"},
      {pets("modules: [img_enc]\n"), "Path-2 needs txt_enc plus an encoder"},
      {pets("modules: [txt_enc, backbone]\n"), "Path-2 needs txt_enc plus an encoder"},
      {pets("path: 1\n"), "Path-1 needs an encoder"},
      {pets("path: 3\n"), "Path-3 is the backbone alone on text"},
      {pets("trainable: {img_enc: lorra}\n"),
       "trainable.img_enc: unknown method 'lorra' (known: frozen, full, lora, prefix, prompt)"},
      {pets("trainable: {img_enc: lora, imgenc: full}\n"), "trainable.imgenc: unknown component"},
      {pets("trainable: {img_enc: lora, backbone: lora}\n"),
       "trainable.backbone: 'lora' but backbone is not on this task's path (modules: img_enc, txt_enc)"},
      {pets("trainable: {img_enc: lora, head: full}\n"), "trainable.head: Path-2 has no head"},
      {pets("trainable: {img_enc: lora, projector: lora}\n"), "projector and head are adapter parts (frozen or full)"},
      {pets("trainable: {img_enc: frozen, txt_enc: frozen}\n"), "every component is frozen; nothing to train"},
      {pets("trainable: {img_enc: full}\n"), "trainable.img_enc: 'full' would copy a firmware module"},
      {pets("trainable: {img_enc: prompt}\n"), "trainable.img_enc: prompt tuning prepends soft tokens to the backbone"},
      {pets("peft: {lora: {targets: [{pattern: \"img_enc.x\", rank: 2}]}}\n"),
       "peft.lora.targets: expected a list of patterns (or {pattern, r, alpha})"},
      {pets("peft: {lora: {targets: [{pattern: \"img_enc.x\", r: 0}]}}\n"), "peft.lora.targets[0].r must be >= 1"},
      {pets("peft: {projector: {kind: conv}}\n"), "peft.projector.kind: unknown 'conv' (known: linear, mlp)"},
      {pets("peft: {head: {kind: crf}}\n"), "peft.head.kind: unknown 'crf' (known: classifier, lm)"},
      {pets("peft: {head: {hidden: -1}}\n"), "peft.head.hidden must be >= 0"},
      {pets("trainable: {img_enc: [lora]}\n"), "trainable.img_enc: expected a string"},
      {pets("peft: {prefix: {num_virtual_tokens: 4}}\n"), "peft.prefix: given but no component in `trainable` uses prefix"},
      {pets("peft: {lora: {r: 0}}\n"), "peft.lora.r must be >= 1 (got 0)"},
      {pets("peft: {lora: {alpha: 0}}\n"), "peft.lora.alpha must be > 0"},
      {pets("peft: {lora: {dropout: 1.0}}\n"), "peft.lora.dropout must be in [0, 1)"},
      {pets("peft: {lora: {targets: []}}\n"), "peft.lora.targets: empty"},
      {pets("peft: {lora: {targets: [\"txt_enc.layers.*.q_proj\"]}}\n"),
       "peft.lora.targets[0]: 'txt_enc.layers.*.q_proj' is in txt_enc, which is not set to lora"},
      {pets("trainable: {img_enc: prefix}\npeft: {prefix: {num_virtual_tokens: 0}}\n"),
       "peft.prefix.num_virtual_tokens must be >= 1"},
      {pets("prompt: birds\n"), "prompt: prompt template 'birds' not found"},
      {pets("prompt: topics\n"), "Path-2 needs an [E] segment in template 'topics'"},
      {pets("metric: acc\n"), "metric: unknown 'acc' (known: accuracy, macro_f1, bleu, wer, recall@K"},
      {pets("metric: recall@0\n"), "metric: unknown 'recall@0'"},
      {pets("metric: bleu\n"), "needs answer: free_text"},
      {pets("data: {train: a.h5, test: b.h5, user_supplied: true}\n"), "data.note: say what the user must supply"},
      {pets("data: {train: \"\", test: b.h5}\n"), "data.train: empty path"},
      {pets("optim: {lr: 0}\n"), "optim.lr must be > 0 (got 0)"},
      {pets("optim: {lr: -1.0e-3}\n"), "optim.lr must be > 0"},
      {pets("optim: {weight_decay: -1}\n"), "optim.weight_decay must be >= 0"},
      {pets("optim: {betas: [0.9]}\n"), "optim.betas must be two numbers in [0, 1)"},
      {pets("optim: {betas: [0.9, 1.0]}\n"), "optim.betas must be two numbers in [0, 1)"},
      {pets("optim: {eps: 0}\n"), "optim.eps must be > 0"},
      {pets("optim: {schedule: step}\n"), "optim.schedule: unknown 'step' (known: cosine, linear, constant)"},
      {pets("optim: {clip_grad_norm: -1}\n"), "optim.clip_grad_norm must be >= 0"},
      {pets("optim: {warmup_steps: 300}\n"), "optim.warmup_steps (300) exceeds train.steps (200)"},
      {pets("train: {batch_size: 0}\n"), "train.batch_size must be >= 1"},
      {pets("train: {grad_accum: 0}\n"), "train.grad_accum must be >= 1"},
      {pets("train: {steps: 0}\n"), "train.steps must be >= 1"},
      {pets("train: {steps: 2.5}\n"), "train.steps: expected an integer (got number 2.5)"},
      {pets("train: {eval_every: -1}\n"), "train.eval_every must be >= 0"},
      {pets("train: {seed: -1}\n"), "train.seed must be >= 0"},
      {pets("train: {precision: fp16}\n"), "train.precision: unknown 'fp16' (known: f32, bf16)"},
      {pets("description: [a]\n"), "description: expected a string"},
      {pets("task: Pets!\n"), "task: 'Pets!' is not an id"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    test::expect_error([&] { load(c.yaml); }, {"pets.yaml: ", c.needle});
  }
}

TEST_F(TaskConfigTest, PathSpecificChecks) {
  // Path-1: the projector must be trained (or come from init_from).
  const std::string p1 = "task: cap\npath: 1\nmodules: [img_enc, backbone]\nprompt: caption\n"
                         "data: {train: a.h5, test: b.h5}\nmetric: bleu\n";
  test::expect_error([&] { load(p1 + "trainable: {backbone: lora}\n", {}, "cap"); },
                     {"Path-1 needs a trained projector (full) unless peft.init_from"});
  const TaskConfig ok = load(p1 + "trainable: {backbone: lora, projector: full}\n", {}, "cap");
  EXPECT_EQ(ok.trainable.at("img_enc"), "frozen");
  EXPECT_EQ(ok.trainable.at("head"), "frozen");
  EXPECT_EQ(ok.metric.kind, MetricKind::kBleu);
  EXPECT_NO_THROW(load(p1 + "trainable: {backbone: lora}\npeft: {init_from: a.safetensors}\n", {}, "cap"));
  test::expect_error([&] { load(p1 + "trainable: {backbone: lora, projector: full}\n", {"metric=accuracy"}, "cap"); },
                     {"metric: accuracy compares labels; template 'caption' has answer: free_text"});
  test::expect_error([&] { load(p1 + "trainable: {backbone: lora, projector: full}\n", {"metric=recall@1"}, "cap"); },
                     {"recall@k is for Path-2 retrieval"});
  test::expect_error([&] { load(p1 + "trainable: {backbone: lora, projector: full}\n", {"metric=mae"}, "cap"); },
                     {"mae needs answer: number"});
  // Path-3: no projector.
  test::expect_error(
      [&] {
        load("task: topics\npath: 3\nmodules: [backbone]\ntrainable: {backbone: lora, projector: full}\n"
             "prompt: topics\ndata: {train: a.h5, test: b.h5}\nmetric: accuracy\n",
             {}, "topics");
      },
      {"trainable.projector: Path-3 has no projector"});
  // Path-2 retrieval within one modality: no txt_enc, no prompt.
  const TaskConfig r = load("task: reid\npath: 2\nmodules: [img_enc]\ntrainable: {img_enc: lora}\n"
                            "data: {train: a.h5, test: b.h5}\nmetric: recall@1\n",
                            {}, "reid");
  EXPECT_EQ(r.prompt, "");
  test::expect_error(
      [&] {
        load("task: reid\npath: 2\nmodules: [img_enc]\ntrainable: {img_enc: lora}\nprompt: pets\n"
             "data: {train: a.h5, test: b.h5}\nmetric: recall@1\n",
             {}, "reid");
      },
      {"prompt: no module on this path reads text"});
}

TEST_F(TaskConfigTest, AllProblemsInOneLine) {
  const std::string msg = test::expect_error(
      [&] { load(pets("path: 5\ntrainable: {img_enc: lorra}\nmetric: acc\noptim: {lr: 0, lrr: 1}\n")); },
      {"pets.yaml: ", "path must be 1, 2 or 3 (got 5)",
       "trainable.img_enc: unknown method 'lorra' (known: frozen, full, lora, prefix, prompt)",
       "metric: unknown 'acc' (known: ", "optim.lr must be > 0", "unknown key 'optim.lrr'"});
  EXPECT_EQ(msg.find("nothing to train"), std::string::npos) << "follow-on noise: " << msg;
  RecordProperty("message", msg);  // visible with --gtest_output=xml
  // "; " separates problems; the error code says "bad input".
  EXPECT_GE(std::count(msg.begin(), msg.end(), ';'), 4) << msg;
  try {
    load(pets("path: 5\n"));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
}

TEST_F(TaskConfigTest, BadTypeIsNotAlsoReportedMissing) {
  const std::string msg = test::expect_error([&] { load(pets("path: two\n")); }, {"path: expected an integer"});
  EXPECT_EQ(msg.find("missing required key 'path'"), std::string::npos) << msg;
}

TEST_F(TaskConfigTest, TaskIdMustMatchFileName) {
  test::expect_error([&] { load(pets(), {}, "dogs"); }, {"dogs.yaml: task 'pets' does not match the file name"});
}

TEST_F(TaskConfigTest, BadYamlAndMissingFile) {
  test::expect_error([&] { load("task: [unclosed\n"); }, {"pets.yaml:", "not valid YAML"});
  test::expect_error([&] { load("- a\n- b\n"); }, {"pets.yaml: expected a mapping"});
  test::expect_error([&] { load_task_config(repo_ / "configs/tasks/none.yaml", {}, repo_.path()); }, {"none.yaml"});
}

TEST_F(TaskConfigTest, RegistryListsYamlFilesSorted) {
  write("configs/tasks/b.yaml", "x: 1\n");
  write("configs/tasks/a.yaml", "x: 1\n");
  write("configs/tasks/notes.txt", "x\n");
  const auto tasks = list_tasks(repo_ / "configs/tasks");
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].id, "a");
  EXPECT_EQ(tasks[1].id, "b");
  EXPECT_EQ(tasks[1].file, repo_ / "configs/tasks/b.yaml");
  test::expect_error([&] { list_tasks(repo_ / "nope"); }, {"no task config directory", "nope"});
}

// ---- The real registry: every file in configs/tasks and prompts/templates. ----

const std::filesystem::path kRepo = M4_REPO_DIR;

// Sample values for template variables: the verbalizer fills {label}.
PromptVars sample_vars(const PromptTemplate& t, PromptModule m) {
  PromptVars v;
  for (const auto& seg : t.segments) {
    if (seg.module != m) continue;
    for (const auto& n : placeholders(seg.text, t.id)) {
      if (n != "label" && !t.fixed.count(n)) v[n] = "<" + n + ">";
    }
  }
  return v;
}

TEST(TaskRegistry, EveryConfigLoadsAndEveryTemplateRenders) {
  const auto tasks = list_tasks(kRepo / "configs/tasks");
  ASSERT_GE(tasks.size(), 30u);
  std::set<std::string> used_prompts;
  for (const auto& e : tasks) {
    SCOPED_TRACE(e.file.string());
    TaskConfig c;
    ASSERT_NO_THROW(c = load_task_config(e.file, {}, kRepo)) << [&] {
      try {
        load_task_config(e.file, {}, kRepo);
      } catch (const std::exception& ex) {
        return std::string(ex.what());
      }
      return std::string();
    }();
    EXPECT_EQ(c.task, e.id);
    EXPECT_FALSE(c.description.empty());
    // The first line is the command that runs it.
    std::ifstream in(e.file);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first, "# m4forge train configs/tasks/" + e.id + ".yaml");
    if (!c.prompt.empty()) used_prompts.insert(c.prompt);
    if (c.data.user_supplied) EXPECT_FALSE(c.data.note.empty());
    else EXPECT_FALSE(c.data.prepare.empty()) << "real-data task without a prepare command";
    // Overrides work on every real config.
    EXPECT_DOUBLE_EQ(load_task_config(e.file, {"optim.lr=2e-4"}, kRepo).optim.lr, 2e-4);
  }
  const auto ids = list_prompt_templates(kRepo);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), used_prompts) << "every template belongs to a task";
  for (const auto& id : ids) {
    SCOPED_TRACE(id);
    const PromptTemplate t = load_prompt_template(kRepo, id);
    // Stand-in label_names for templates that take them from the dataset.
    const std::vector<std::string> ds_labels =
        t.labels_from_dataset ? std::vector<std::string>{"first class", "second class"} : std::vector<std::string>{};
    if (t.has_module(PromptModule::kTextEncoder)) {
      const bool uses_label = std::find(t.variables.begin(), t.variables.end(), "label") != t.variables.end();
      if (uses_label) {
        const auto texts = t.label_texts({}, ds_labels);
        ASSERT_FALSE(texts.empty());
        for (const auto& s : texts) EXPECT_EQ(s.find('{'), std::string::npos) << s;
      } else {
        EXPECT_FALSE(t.render(PromptModule::kTextEncoder, sample_vars(t, PromptModule::kTextEncoder)).empty());
      }
    }
    if (t.has_module(PromptModule::kBackbone)) {
      const std::string s = t.render(PromptModule::kBackbone, sample_vars(t, PromptModule::kBackbone));
      EXPECT_FALSE(s.empty());
      EXPECT_EQ(s.find("{"), std::string::npos) << s;
    }
    // Round trip through the manifest form.
    EXPECT_EQ(parse_prompt_template(t.to_json(), id, "manifest").to_json(), t.to_json());
  }
}

TEST(TaskRegistry, RealDataTasksArePresent) {
  for (const char* id : {"fashion_mnist", "wordnet_topics", "translation_de_en", "keyword_spotting",
                         "audio_classification", "image_captioning", "text_to_image_retrieval", "har"}) {
    SCOPED_TRACE(id);
    const TaskConfig c = load_task_config(kRepo / "configs/tasks" / (std::string(id) + ".yaml"), {}, kRepo);
    EXPECT_FALSE(c.data.user_supplied);
  }
  const TaskConfig har = load_task_config(kRepo / "configs/tasks/har.yaml", {}, kRepo);
  EXPECT_NE(har.description.find("SYNTHETIC"), std::string::npos);
  const TaskConfig tr = load_task_config(kRepo / "configs/tasks/translation_de_en.yaml", {}, kRepo);
  const PromptTemplate t = load_prompt_template(kRepo, tr.prompt);
  EXPECT_EQ(t.render(PromptModule::kBackbone, {{"text", "Guten Morgen."}}),
            "Translate the following sentences from German to English. Guten Morgen.");
  const PromptTemplate fm = load_prompt_template(kRepo, "fashion_mnist");
  EXPECT_EQ(fm.label_texts()[9], "There is a photo of a ankle boot.");
}

}  // namespace
}  // namespace m4
