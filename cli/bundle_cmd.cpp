// keygen / export / verify / compat / run: signed adapter bundles bound to one
// firmware (docs/bundle-format.md). The checks live in export/; this file parses options and prints.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/cli_common.h"
#include "data/dataset_reader.h"
#include "data/png_image.h"
#include "data/resample.h"
#include "data/wav.h"
#include "export/bundle_reader.h"
#include "export/bundle_writer.h"
#include "export/compat.h"
#include "export/firmware_binding.h"
#include "export/minisign.h"
#include "firmware/atomic_file.h"
#include "firmware/error.h"
#include "firmware/firmware.h"
#include "firmware/json_file.h"
#include "firmware/sha256.h"
#include "prompts/prompt_template.h"
#include "prompts/task_config.h"
#include "train/task_model.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// Reproducible builds set SOURCE_DATE_EPOCH; otherwise the bundle records now.
int64_t creation_time() {
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH")) {
    char* end = nullptr;
    const long long v = std::strtoll(e, &end, 10);
    M4_CHECK(end && *end == '\0' && v >= 0, ErrorCode::kInvalidArgument, "SOURCE_DATE_EPOCH='", e,
             "' is not a non-negative integer");
    return v;
  }
  return static_cast<int64_t>(std::time(nullptr));
}

std::optional<std::string> password_of(const cxxopts::ParseResult& r) {
  if (!r.count("password-file")) return std::nullopt;
  return minisign::read_password_file(r["password-file"].as<std::string>());
}

// Writes the secret key with 0600 from the first byte (a rename of a 0644 temp
// file would leave a window where others can read it); never overwrites.
void write_secret_file(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  M4_CHECK(fd >= 0, ErrorCode::kIo, path.string(), ": cannot create the secret key file (",
           errno == EEXIST ? "it exists; refusing to overwrite a key" : std::strerror(errno), ")");
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    fs::remove(path);
    M4_FAIL(ErrorCode::kIo, path.string(), ": cannot write the secret key file");
  }
}

int keygen_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge keygen", "Make an Ed25519 signing key pair in minisign's formats: KEY.key (secret, mode 0600)\n"
                                       "and KEY.pub. Without --password-file the secret key is unencrypted (minisign -W).");
  o.add_options()("out", "key path without extension (writes OUT.key, OUT.pub)", cxxopts::value<std::string>())(
      "password-file", "encrypt the secret key with the first line of this file (scrypt, as minisign)",
      cxxopts::value<std::string>())("kdf", "scrypt cost of an encrypted key: sensitive (minisign's, 1 GiB) | interactive (16 MiB)",
                                     cxxopts::value<std::string>()->default_value("sensitive"));
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const std::string out = required(r, "out");
  const std::string kdf = r["kdf"].as<std::string>();
  M4_CHECK(kdf == "sensitive" || kdf == "interactive", ErrorCode::kInvalidArgument, "--kdf must be sensitive or interactive, got '",
           kdf, "'");
  const fs::path sec = out + ".key", pub = out + ".pub";
  M4_CHECK(!fs::exists(sec) && !fs::exists(pub), ErrorCode::kInvalidArgument, out,
           ".key or .pub exists; refusing to overwrite a key (choose another --out)");
  const auto password = password_of(r);
  const auto g = minisign::generate_key(password.value_or(""),
                                        kdf == "interactive" ? minisign::KdfLimits::interactive() : minisign::KdfLimits{});
  write_secret_file(sec, g.secret_file);
  write_file_atomic(pub, g.public_file);
  std::cout << "wrote " << sec.string() << " (secret, " << (password ? "password-protected" : "unencrypted") << ") and "
            << pub.string() << " (key id " << g.secret.public_key().key_id() << ")\n";
  return 0;
}

// SHA-256 of each data file the task names that exists (provenance, not a check).
json dataset_digests(const TaskConfig& task) {
  json d = json::object();
  for (const auto& [split, file] : {std::pair<std::string, std::string>{"train", task.data.train}, {"test", task.data.test}}) {
    if (!file.empty() && fs::is_regular_file(file)) d[split] = "sha256:" + to_hex(sha256_file(file));
  }
  return d;
}

// The verbalizer: the template's texts, or the dataset's label names when the template defers to them.
std::vector<std::string> labels_of(const TaskConfig& task, const PromptTemplate& t, const json& run) {
  if (!t.labels_from_dataset) return t.labels;  // empty for generation tasks
  std::vector<std::string> names;
  if (run.contains("label_names") && run["label_names"].is_array()) {
    names = run["label_names"].get<std::vector<std::string>>();
  } else {
    for (const auto& f : {task.data.train, task.data.test}) {
      if (!f.empty() && fs::is_regular_file(f)) {
        names = data::DatasetReader::open(f)->attributes().label_names;
        break;
      }
    }
  }
  M4_CHECK(!names.empty(), ErrorCode::kInvalidArgument, "template '", t.id, "' takes its labels from the dataset, but ",
           task.data.train, " is missing (hint: build it with: ", task.data.prepare, ")");
  return t.labels_for(names);
}

int export_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge export", "Write a signed NAME.m4adapter bundle (POSIX tar: manifest.json, adapter.safetensors,\n"
                                       "manifest.json.minisig) bound to the firmware the adapter was trained on.");
  o.add_options()("run", "training run directory (adapter.safetensors + run.json)", cxxopts::value<std::string>())(
      "adapter", "adapter file (instead of --run)", cxxopts::value<std::string>())(
      "task", "task config for --adapter (configs/tasks/<task>.yaml)", cxxopts::value<std::string>())(
      "override", "dotted override for --task (repeatable)", cxxopts::value<std::vector<std::string>>())(
      "firmware", "firmware directory the adapter was trained on", cxxopts::value<std::string>())(
      "key", "minisign secret key (KEY.key)", cxxopts::value<std::string>())(
      "password-file", "password of an encrypted key", cxxopts::value<std::string>())(
      "out", "output bundle NAME.m4adapter", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("run") != (r.count("adapter") || r.count("task")), ErrorCode::kInvalidArgument,
           "give either --run RUN_DIR or --adapter A --task CONFIG");
  const fs::path out = required(r, "out");
  Firmware fw = Firmware::open(required(r, "firmware"));
  const minisign::SecretKey key = minisign::read_secret_key(required(r, "key"), password_of(r));

  ExportRequest req;
  json run = json::object();
  fs::path root;
  if (r.count("run")) {
    const fs::path dir = r["run"].as<std::string>();
    run = read_json_file(dir / "run.json");
    M4_CHECK(run.contains("task_config") && run["task_config"].is_object(), ErrorCode::kBadInput, (dir / "run.json").string(),
             ": missing 'task_config'");
    root = repo_root_of(run.value("config_path", std::string("x")));
    req.task = task_config_from_json(run["task_config"], {}, root, (dir / "run.json").string());
    req.adapter_file = dir / "adapter.safetensors";
    if (run.contains("firmware") && run["firmware"].contains("id")) {
      M4_CHECK(run["firmware"]["id"] == fw.id(), ErrorCode::kMismatch, dir.string(), ": the run trained on firmware_id ",
               run["firmware"]["id"].get<std::string>(), " but ", fw.dir().string(), " is ", fw.id());
    }
    req.dataset_digests = run.value("dataset_digests", json::object());
    req.training = run.value("training", json::object());
    req.metrics = run.value("metrics", json::object());
  } else {
    const fs::path cfg = required(r, "task");
    req.adapter_file = required(r, "adapter");
    std::vector<std::string> overrides;
    if (r.count("override")) overrides = r["override"].as<std::vector<std::string>>();
    root = repo_root_of(cfg);
    req.task = load_task_config(cfg, overrides, root);
    req.dataset_digests = dataset_digests(req.task);
    req.training = {{"optim", req.task.resolved.value("optim", json::object())},
                    {"train", req.task.resolved.value("train", json::object())}};
  }
  if (!req.task.prompt.empty()) {
    req.prompt = load_prompt_template(root, req.task.prompt);
    req.labels = labels_of(req.task, *req.prompt, run);
  }
  req.created = creation_time();
  const BundleManifest m = write_bundle(out, fw, req, key);
  std::cout << "wrote " << out.string() << ": task " << m.task << ", " << m.adapter_tensors.size() << " adapter tensors ("
            << m.adapter_size << " bytes), bound to " << fw.label() << " (" << m.firmware_id << "), signed by key "
            << key.public_key().key_id() << "\n";
  return 0;
}

int verify_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge verify", "Check a bundle: tar structure, signature, digests, adapter header and, with\n"
                                       "--firmware, that it is bound to exactly that firmware. Exit 0 only if all hold.");
  o.add_options()("bundle", "NAME.m4adapter", cxxopts::value<std::string>())(
      "pubkey", "minisign public key (KEY.pub)", cxxopts::value<std::string>())(
      "firmware", "check the binding to this firmware directory", cxxopts::value<std::string>());
  o.parse_positional({"bundle"});
  o.positional_help("BUNDLE");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const fs::path bundle = required(r, "bundle");
  const minisign::PublicKey key = minisign::read_public_key(required(r, "pubkey"));
  const VerifiedBundle v = verify_bundle(bundle, &key);
  const BundleManifest& m = v.manifest;
  std::string binding = "not checked (no --firmware)";
  if (r.count("firmware")) {
    const Firmware fw = Firmware::open(r["firmware"].as<std::string>());
    check_binding(m, fw, bundle.string());
    binding = "ok (" + fw.label() + ", " + std::to_string(m.touched.size()) + " touched tensors present)";
  }
  std::cout << bundle.string() << ": ok\n"
            << "  task:        " << m.task << " (path " << m.path << ")\n"
            << "  signed by:   key " << key.key_id() << "\n"
            << "  trusted:     " << v.trusted_comment << "\n"
            << "  bound to:    " << m.firmware_name << "@" << m.firmware_version << " (" << m.firmware_id << ")\n"
            << "  adapter:     " << m.adapter_size << " bytes, " << m.adapter_sha256 << "\n"
            << "  binding:     " << binding << "\n";
  return 0;
}

int compat_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge compat", "Classify bundles against a firmware: ok (same firmware_id), retrain (same touched\n"
                                       "shapes, other weights), incompatible (first differing tensor), bad (fails verify).\n"
                                       "Exit 0 only if every bundle is ok (or retrain with --allow-retrain).");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "bundles", "bundles", cxxopts::value<std::vector<std::string>>())(
      "pubkey", "check signatures with this minisign public key", cxxopts::value<std::string>())(
      "json", "print JSON instead of a table")("allow-retrain", "accept retrain rows");
  o.parse_positional({"bundles"});
  o.positional_help("BUNDLE...");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("bundles") != 0, ErrorCode::kInvalidArgument, "give at least one bundle (see --help)");
  const Firmware fw = Firmware::open(required(r, "firmware"));
  std::optional<minisign::PublicKey> key;
  if (r.count("pubkey")) key = minisign::read_public_key(r["pubkey"].as<std::string>());
  const bool allow = r.count("allow-retrain") != 0;
  const FirmwareShapes shapes = firmware_shapes(fw);
  std::vector<CompatRow> rows;
  int refused = 0;
  for (const auto& b : r["bundles"].as<std::vector<std::string>>()) {
    rows.push_back(classify_bundle(b, key ? &*key : nullptr, fw, shapes));
    refused += compat_accepted(rows.back(), allow) ? 0 : 1;
  }
  if (r.count("json")) {
    json j = {{"firmware", fw.label()}, {"firmware_id", fw.id()}, {"signatures_checked", key.has_value()},
              {"allow_retrain", allow}, {"bundles", json::array()}};
    for (const auto& row : rows) {
      json e = row.to_json();
      e["accepted"] = compat_accepted(row, allow);
      j["bundles"].push_back(e);
    }
    std::cout << j.dump(1) << "\n";
  } else {
    size_t w = 6;
    for (const auto& row : rows) w = std::max(w, row.bundle.string().size());
    std::cout << "compat against " << fw.label() << " (" << fw.id() << ")"
              << (key ? "" : "; signatures NOT checked (no --pubkey)") << "\n";
    std::cout << std::left << std::setw(static_cast<int>(w) + 2) << "BUNDLE" << std::setw(14) << "STATUS" << std::setw(24)
              << "TASK" << "DETAIL\n";
    for (const auto& row : rows) {
      std::cout << std::left << std::setw(static_cast<int>(w) + 2) << row.bundle.string() << std::setw(14)
                << compat_status_name(row.status) << std::setw(24) << (row.task.empty() ? "-" : row.task) << row.detail
                << "\n";
    }
  }
  std::cout.flush();
  M4_CHECK(refused == 0, ErrorCode::kMismatch, "compat: ", refused, " of ", rows.size(), " bundles are not deployable on ",
           fw.label(), allow ? "" : " (retrain rows need --allow-retrain)");
  return 0;
}

// The adapter bytes as a file without touching the disk: an anonymous memfd,
// named through /proc/self/fd, which the adapter loader maps like any file.
struct MemFile {
  int fd = -1;
  explicit MemFile(std::string_view bytes) {
    fd = ::memfd_create("m4forge-adapter", MFD_CLOEXEC);
    M4_CHECK(fd >= 0, ErrorCode::kIo, "memfd_create failed: ", std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      M4_CHECK(n > 0, ErrorCode::kIo, "cannot buffer the adapter: ", std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }
  ~MemFile() {
    if (fd >= 0) ::close(fd);
  }
  fs::path path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

// IMU CSV: rows of 6 numbers (accel xyz, gyro xyz); a header line is skipped. -> (1, T, 6) f32
at::Tensor read_imu_csv(const fs::path& path) {
  std::ifstream in(path);
  M4_CHECK(in.good(), ErrorCode::kIo, path.string(), ": cannot open");
  std::vector<float> v;
  std::string line;
  int64_t rows = 0, lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line == "\r") continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<float> row;
    bool numeric = true;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      const float f = std::strtof(cell.c_str(), &end);
      if (end == cell.c_str()) numeric = false;
      row.push_back(f);
    }
    if (!numeric && rows == 0 && lineno == 1) continue;
    M4_CHECK(numeric && row.size() == 6, ErrorCode::kBadInput, path.string(), ":", lineno,
             ": expected 6 numbers (ax,ay,az,gx,gy,gz), got '", line, "'");
    v.insert(v.end(), row.begin(), row.end());
    ++rows;
  }
  M4_CHECK(rows > 0, ErrorCode::kBadInput, path.string(), ": no IMU rows");
  return at::from_blob(v.data(), {1, rows, 6}, at::kFloat).clone();
}

// One sample for the task's input module, from a file (by extension) or text.
Batch one_sample(const TaskConfig& task, const cxxopts::ParseResult& r) {
  Batch b;
  b.indices = {0};
  if (r.count("text")) b.texts["text"] = {r["text"].as<std::string>()};
  if (!r.count("input")) {
    M4_CHECK(r.count("text"), ErrorCode::kInvalidArgument, "give --input FILE or --text TEXT");
    return b;
  }
  const fs::path in = r["input"].as<std::string>();
  std::string ext = in.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") {
    const data::Image img = data::read_png(in, 3);
    b.tensors["image"] = at::from_blob(const_cast<uint8_t*>(img.pixels.data()), {1, img.channels, img.height, img.width},
                                       at::kByte).clone();
  } else if (ext == ".wav" || ext == ".flac" || ext == ".ogg") {
    constexpr int64_t kRate = 16000;  // Whisper's and AST's only rate
    const data::MonoAudio a = data::read_audio_mono(in);
    std::vector<float> x = a.sample_rate == kRate ? a.samples : data::resample(a.samples, a.sample_rate, kRate);
    b.tensors["audio"] = at::from_blob(x.data(), {1, static_cast<int64_t>(x.size())}, at::kFloat).clone();
  } else if (ext == ".csv") {
    b.tensors["imu"] = read_imu_csv(in);
  } else if (ext == ".txt") {
    b.texts["text"] = {read_text_file(in, 1 << 20)};
  } else {
    M4_FAIL(ErrorCode::kInvalidArgument, in.string(), ": unknown input kind '", ext,
            "' (png image, wav/flac/ogg audio, csv IMU, txt text)");
  }
  return b;
}

int run_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge run", "Verify a bundle (signature, digests, binding to --firmware), load its adapter\n"
                                    "fail-closed and print the prediction for one input.");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "bundle", "NAME.m4adapter", cxxopts::value<std::string>())(
      "pubkey", "minisign public key", cxxopts::value<std::string>())(
      "input", "input file: .png image, .wav audio, .csv IMU, .txt text", cxxopts::value<std::string>())(
      "text", "input text", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const fs::path bundle = required(r, "bundle");
  const minisign::PublicKey key = minisign::read_public_key(required(r, "pubkey"));
  const Firmware fw = Firmware::open(required(r, "firmware"));
  const VerifiedBundle v = verify_bundle(bundle, &key);
  check_binding(v.manifest, fw, bundle.string());
  const BundleManifest& m = v.manifest;
  const std::string where = bundle.string() + ": manifest.json";
  M4_CHECK(m.prompt_template.is_object() && !m.prompt_id.empty(), ErrorCode::kBadInput, where, ": no prompt template (run needs one)");
  const PromptTemplate prompt = parse_prompt_template(m.prompt_template, m.prompt_id, where);
  const TaskConfig task = task_config_from_json(m.task_config, prompt, where);
  const Batch batch = one_sample(task, r);
  const MemFile adapter(v.adapter);
  TaskModel model(fw, task, prompt, m.labels, adapter.path());
  const auto preds = model.predict(batch);
  M4_CHECK(preds.size() == 1, ErrorCode::kInternal, "expected one prediction, got ", preds.size());
  std::cout << preds[0].text << "\n";
  return 0;
}

}  // namespace

int run_bundle_verb(const std::string& verb, int argc, char** argv) {
  if (verb == "keygen") return keygen_cmd(argc, argv);
  if (verb == "export") return export_cmd(argc, argv);
  if (verb == "verify") return verify_cmd(argc, argv);
  if (verb == "compat") return compat_cmd(argc, argv);
  if (verb == "run") return run_cmd(argc, argv);
  M4_FAIL(ErrorCode::kInvalidArgument, "unknown bundle command '", verb, "'");
}
}  // namespace m4::cli
