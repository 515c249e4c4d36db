// keygen / export / verify / compat / run: signed adapter bundles bound to one
// firmware (docs/bundle-format.md). The work lives in bundle/ and export/;
// this file parses options and prints.
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "bundle/bundle_reader.h"
#include "bundle/minisign.h"
#include "cli/cli_common.h"
#include "core/error.h"
#include "data/input_file.h"
#include "export/bundle_model.h"
#include "export/bundle_writer.h"
#include "export/compat.h"
#include "export/export_request.h"
#include "export/firmware_binding.h"
#include "firmware/firmware.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::optional<std::string> password_of(const cxxopts::ParseResult& r) {
  if (!r.count("password-file")) return std::nullopt;
  return minisign::read_password_file(r["password-file"].as<std::string>());
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
  const auto password = password_of(r);
  const auto g = minisign::write_key_files(out, password.value_or(""),
                                           kdf == "interactive" ? minisign::KdfLimits::interactive() : minisign::KdfLimits{});
  std::cout << "wrote " << out << ".key" << " (secret, " << (password ? "password-protected" : "unencrypted") << ") and " << out
            << ".pub (key id " << g.secret.public_key().key_id() << ")\n";
  return 0;
}

int export_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge export", "Write a signed NAME.m4adapter bundle (POSIX tar: manifest.json, adapter.safetensors,\n"
                                       "manifest.json.minisig) bound to the firmware the adapter was trained on.");
  o.add_options()("run", "training run directory (adapter.safetensors + run.json)", cxxopts::value<std::string>())(
      "adapter", "adapter file (instead of --run)", cxxopts::value<std::string>())(
      "task", "task config for --adapter (configs/tasks/<task>.yaml)", cxxopts::value<std::string>())(
      "firmware", "firmware directory the adapter was trained on", cxxopts::value<std::string>())(
      "key", "minisign secret key (KEY.key)", cxxopts::value<std::string>())(
      "password-file", "password of an encrypted key", cxxopts::value<std::string>())(
      "out", "output bundle NAME.m4adapter", cxxopts::value<std::string>());
  o.add_options()("args", "dotted overrides key=value for --task", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"args"});
  o.positional_help("[key=value ...]");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("run") != (r.count("adapter") || r.count("task")), ErrorCode::kInvalidArgument,
           "give either --run RUN_DIR or --adapter A --task CONFIG");
  M4_CHECK(!r.count("run") || !r.count("args"), ErrorCode::kInvalidArgument,
           "overrides do not apply to --run: a run is exported exactly as it trained (its run.json)");
  const fs::path out = required(r, "out");
  Firmware fw = Firmware::open(required(r, "firmware"));
  const minisign::SecretKey key = minisign::read_secret_key(required(r, "key"), password_of(r));

  ExportRequest req = r.count("run") ? export_request_from_run(r["run"].as<std::string>())
                                      : export_request_from_config(required(r, "adapter"), required(r, "task"), overrides_of(r));
  req.created = bundle_creation_time();
  const BundleManifest m = write_bundle(out, fw, req, key);
  std::cout << "wrote " << out.string() << ": task " << m.task << ", " << m.adapter_tensors.size() << " adapter tensors ("
            << m.adapter_size << " bytes), bound to " << fw.label() << " (" << m.firmware_id << "), signed by key "
            << key.public_key().key_id() << "\n";
  return 0;
}

int verify_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge verify", "Check a bundle: tar structure, signature, digests, adapter header and, with\n"
                                       "--firmware, that it is bound to exactly that firmware and that its canary gives the outputs it\n"
                                       "gave at export (not drifted, not without effect). Exit 0 only if all hold.");
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
  std::string binding = "not checked (no --firmware)", canary = m.canary ? "not run (no --firmware)" : "none (a bundle made before canaries)";
  if (r.count("firmware")) {
    const Firmware fw = Firmware::open(r["firmware"].as<std::string>());
    check_binding(m, fw, bundle.string());
    binding = "ok (" + fw.label() + ", " + std::to_string(m.touched.size()) + " touched tensors present)";
    // The canary runs on the model the bundle makes on this firmware, as a device would.
    if (m.canary) {
      const BundleModel bm = open_bound_bundle_model(fw, v);
      canary = std::to_string(m.canary->probes) + " probes (" + m.canary->output + "): " + bm.canary->describe();
    }
  }
  std::cout << bundle.string() << ": ok\n"
            << "  task:        " << m.task << " (path " << m.path << ")\n"
            << "  signed by:   key " << key.key_id() << "\n"
            << "  trusted:     " << v.trusted_comment << "\n"
            << "  bound to:    " << m.firmware_name << "@" << m.firmware_version << " (" << m.firmware_id << ")\n"
            << "  adapter:     " << m.adapter_size << " bytes, " << m.adapter_sha256 << "\n"
            << "  binding:     " << binding << "\n"
            << "  canary:      " << canary << "\n";
  return 0;
}

int compat_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge compat", "Classify bundles against a firmware: ok (same firmware_id), derived (one firmware\n"
                                       "is the other quantized), retrain (same touched shapes, other weights), incompatible\n"
                                       "(first differing tensor), bad (fails verify). Exit 0 only if every bundle is ok (or\n"
                                       "retrain with --allow-retrain, derived with --allow-derived, where the canary holds).");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "bundles", "bundles", cxxopts::value<std::vector<std::string>>())(
      "pubkey", "check signatures with this minisign public key", cxxopts::value<std::string>())(
      "json", "print JSON instead of a table")("allow-retrain", "accept retrain rows whose canary holds")(
      "allow-derived", "accept derived rows (the firmware quantized) whose canary keeps its effect");
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
  CompatPolicy policy;
  policy.allow_retrain = r.count("allow-retrain") != 0;
  policy.allow_derived = r.count("allow-derived") != 0;
  std::vector<fs::path> bundles;
  for (const auto& b : r["bundles"].as<std::vector<std::string>>()) bundles.emplace_back(b);
  const std::vector<CompatRow> rows = classify_bundles(bundles, key ? &*key : nullptr, fw);
  int refused = 0;
  for (const auto& row : rows) refused += compat_accepted(row, policy) ? 0 : 1;
  if (r.count("json")) {
    json j = {{"firmware", fw.label()}, {"firmware_id", fw.id()}, {"signatures_checked", key.has_value()},
              {"allow_retrain", policy.allow_retrain}, {"allow_derived", policy.allow_derived}, {"bundles", json::array()}};
    for (const auto& row : rows) {
      json e = row.to_json();
      e["accepted"] = compat_accepted(row, policy);
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
                << (row.canary.empty() ? "" : "; canary " + row.canary) << "\n";
    }
  }
  std::cout.flush();
  M4_CHECK(refused == 0, ErrorCode::kMismatch, "compat: ", refused, " of ", rows.size(), " bundles are not deployable on ",
           fw.label(), " (a retrain row needs --allow-retrain and a derived row --allow-derived, each deployable only where its canary holds)");
  return 0;
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
  M4_CHECK(r.count("input") || r.count("text"), ErrorCode::kInvalidArgument, "give --input FILE or --text TEXT");
  data::Batch batch = r.count("input") ? data::read_input_file(r["input"].as<std::string>()) : data::text_input(r["text"].as<std::string>());
  if (r.count("input") && r.count("text")) batch.texts["text"] = {r["text"].as<std::string>()};
  BundleModel bm = open_bundle_model(fw, bundle, key);
  std::vector<Prediction> preds;
  try {
    preds = bm.model->predict(batch);
  } catch (const Error& e) {
    if (!r.count("input")) throw;
    rethrow_naming_input(e, r["input"].as<std::string>());  // its size, shape, channels
  }
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
