// End-to-end tests of keygen / export / verify / compat / run with the real
// binary, checked against independent tools (GNU tar, sha256sum, Debian's
// minisign), and one test per hostile bundle the issue lists.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "bundle/bundle_manifest.h"
#include "bundle/minisign.h"
#include "bundle/tar_archive.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "export/bundle_writer.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "prompts/prompt_template.h"
#include "task/run_record.h"
#include "task/task_config.h"
#include "tests/support/adapter_files.h"
#include "tests/support/cli_test.h"
#include "tests/support/image_files.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;
using Entries = std::vector<std::pair<std::string, std::string>>;
constexpr const char* kMinisign = "/usr/bin/minisign";

std::string pad(std::string s) {
  if (s.size() % 512) s.append(512 - s.size() % 512, '\0');
  return s;
}

// A tar from (name, data) pairs, with an optional type flag per name.
std::string make_tar(const Entries& entries, const std::map<std::string, char>& types = {}) {
  std::string out;
  for (const auto& [n, d] : entries) {
    const auto t = types.find(n);
    const char type = t == types.end() ? '0' : t->second;
    out += tar_header(n, type == '0' ? d.size() : 0, 1700000000, type, type == '0' ? "" : "manifest.json");
    if (type == '0') out += pad(d);
  }
  return out + std::string(1024, '\0');
}

// The data of the entry named `name` (a failure when there is none).
std::string& named(Entries& e, const std::string& name) {
  for (auto& [n, d] : e) {
    if (n == name) return d;
  }
  ADD_FAILURE() << "no entry " << name;
  static std::string none;
  return none;
}

// The byte offset of tensor `name`'s data in a safetensors file's bytes.
size_t tensor_offset(const std::string& st, const std::string& name) {
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(st.substr(8, n));
  return 8 + n + h.at(name).at("data_offsets")[0].get<size_t>();
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) s.insert(e.path().string());
  return s;
}

class BundleCli : public test::CliTest {
 protected:
  void SetUp() override {
    fw_ = demo("fw");
    key_ = (tmp_ / "key").string();
    ASSERT_EQ(m4({"keygen", "--out", key_}).code, 0);
    cfg_ = (test::repo_dir() / "configs" / "tasks" / "translation_de_en.yaml").string();
    adapter_ = make_adapter(fw_, tmp_ / "adapter.safetensors");
    bundle_ = (tmp_ / "a.m4adapter").string();
    CliRun r = export_bundle(bundle_, key_ + ".key");
    ASSERT_EQ(r.code, 0) << r.err;
    fs::create_directory(tmp_ / "hostile");
  }

  std::string make_adapter(const std::string& fw_dir, const fs::path& out, const std::string& cfg = "") {
    return test::write_random_adapter(fw_dir, cfg.empty() ? cfg_ : cfg, out);
  }

  CliRun export_bundle(const std::string& out, const std::string& key, const std::string& fw = "") {
    return m4({"export", "--adapter", adapter_, "--task", cfg_, "--firmware", fw.empty() ? fw_ : fw, "--key", key, "--out", out,
               "--log-level", "warn"});
  }
  CliRun verify(const std::string& bundle, const std::string& fw = "") {
    std::vector<std::string> a = {"verify", bundle, "--pubkey", key_ + ".pub", "--log-level", "warn"};
    if (!fw.empty()) a.insert(a.end(), {"--firmware", fw});
    return m4(a);
  }
  Entries entries(const std::string& bytes) {
    Entries e;
    for (const auto& t : read_tar(bytes, {{"manifest.json", 1 << 20}, {"adapter.safetensors", 1ULL << 32},
                                          {"canary.safetensors", 64 << 20}, {"manifest.json.minisig", 4096}}, "b")) {
      e.push_back({t.name, std::string(t.data)});
    }
    return e;
  }
  Entries original() { return entries(test::slurp(bundle_)); }
  // Writes a hostile bundle, verifies it, expects one error line naming the
  // bundle and `needles`, and that verification wrote nothing.
  void expect_refused(const std::string& name, const std::string& bytes, std::initializer_list<std::string> needles,
                      const std::string& fw = "") {
    const fs::path p = tmp_ / "hostile" / name;
    write_file_atomic(p, bytes);
    const auto before = listing(tmp_ / "hostile");
    CliRun r = verify(p.string(), fw.empty() ? fw_ : fw);
    expect_one_line_error(r, needles);
    EXPECT_NE(r.err.find("m4forge: error: " + p.string() + ": "), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(listing(tmp_ / "hostile"), before);
  }
  // The manifest edited by `edit` (and the other entries by `edit_entries`),
  // re-signed with our key: only the edited check can fail.
  std::string resigned(const std::function<void(nlohmann::json&)>& edit,
                       const std::function<void(Entries&, nlohmann::json&)>& edit_entries = nullptr) {
    Entries e = original();
    nlohmann::json m = nlohmann::json::parse(named(e, "manifest.json"));
    edit(m);
    if (edit_entries) edit_entries(e, m);
    const std::string text = m.dump(1) + "\n";
    const auto key = minisign::read_secret_key(key_ + ".key", std::nullopt);
    const std::string comment = minisign::parse_signature(named(e, "manifest.json.minisig"), "s").trusted_comment;
    named(e, "manifest.json") = text;
    named(e, "manifest.json.minisig") = minisign::sign(key, text, comment);
    return make_tar(e);
  }

  std::string fw_, key_, cfg_, adapter_, bundle_;
};

TEST_F(BundleCli, EveryVerbHasHelp) {
  for (const char* verb : {"keygen", "export", "verify", "compat", "run"}) {
    CliRun r = m4({verb, "--help"});
    EXPECT_EQ(r.code, 0) << verb;
    EXPECT_NE(r.out.find("m4forge " + std::string(verb)), std::string::npos) << r.out;
  }
}

TEST_F(BundleCli, KeygenWritesMinisignFilesAndNeverOverwrites) {
  EXPECT_EQ(fs::status(key_ + ".key").permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(test::slurp(key_ + ".pub").rfind("untrusted comment: minisign public key ", 0), 0u);
  expect_one_line_error(m4({"keygen", "--out", key_}), {"refusing to overwrite a key"});
}

TEST_F(BundleCli, ExportVerifyCompatRoundTripWithIndependentTools) {
  CliRun v = verify(bundle_, fw_);
  ASSERT_EQ(v.code, 0) << v.err;
  EXPECT_NE(v.out.find(": ok"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("binding:     ok"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("canary:      4 probes (next-token logits at the end of the prompt): ok: max |diff| 0 <="), std::string::npos)
      << v.out;

  // GNU tar lists exactly the four regular files.
  const fs::path x = tmp_ / "x";
  fs::create_directory(x);
  ASSERT_EQ(std::system(("tar -tvf " + bundle_ + " > " + (tmp_ / "list").string()).c_str()), 0);
  std::istringstream list(test::slurp(tmp_ / "list"));
  std::vector<std::string> lines;
  for (std::string l; std::getline(list, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << test::slurp(tmp_ / "list");
  EXPECT_EQ(lines[0].substr(0, 10), "-rw-r--r--");
  EXPECT_NE(lines[0].find(" manifest.json"), std::string::npos);
  EXPECT_NE(lines[1].find(" adapter.safetensors"), std::string::npos);
  EXPECT_NE(lines[2].find(" canary.safetensors"), std::string::npos);
  EXPECT_NE(lines[3].find(" manifest.json.minisig"), std::string::npos);

  // sha256sum of the extracted adapter is the manifest's digest; it is the exported file.
  ASSERT_EQ(std::system(("tar -xf " + bundle_ + " -C " + x.string()).c_str()), 0);
  ASSERT_EQ(std::system(("sha256sum " + (x / "adapter.safetensors").string() + " > " + (tmp_ / "sum").string()).c_str()), 0);
  const nlohmann::json m = nlohmann::json::parse(test::slurp(x / "manifest.json"));
  EXPECT_EQ("sha256:" + test::slurp(tmp_ / "sum").substr(0, 64), m["adapter"]["sha256"].get<std::string>());
  EXPECT_EQ(test::slurp(x / "adapter.safetensors"), test::slurp(adapter_));
  ASSERT_EQ(std::system(("sha256sum " + (x / "canary.safetensors").string() + " > " + (tmp_ / "csum").string()).c_str()), 0);
  EXPECT_EQ("sha256:" + test::slurp(tmp_ / "csum").substr(0, 64), m["canary"]["sha256"].get<std::string>());
  EXPECT_EQ(m["canary"]["probes"], 4);
  EXPECT_GT(m["canary"]["effect"].get<double>(), m["canary"]["tolerance"].get<double>()) << "a random adapter changes the outputs";
  EXPECT_EQ(m["format"], "m4forge-bundle/1");
  EXPECT_EQ(m["task"]["name"], "translation_de_en");
  EXPECT_EQ(m["firmware"]["firmware_id"], Firmware::open(fw_).id());
  EXPECT_EQ(m["firmware"]["touched"].size(), m["adapter"]["tensors"].size() / 2);  // q,v weights; lora_a + lora_b each
  EXPECT_EQ(m["firmware"]["module_digests"].size(), 1u);
  EXPECT_EQ(m["prompt"]["id"], "translation_de_en");
  EXPECT_TRUE(m["provenance"]["m4forge"].contains("revision"));

  // Debian's minisign verifies the manifest signature (prehashed required) with our public key.
  if (fs::exists(kMinisign)) {
    const std::string cmd = std::string(kMinisign) + " -V -H -p " + key_ + ".pub -m " + (x / "manifest.json").string() +
                            " -x " + (x / "manifest.json.minisig").string() + " > " + (tmp_ / "mv").string();
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_NE(test::slurp(tmp_ / "mv").find("firmware_id=" + m["firmware"]["firmware_id"].get<std::string>()),
              std::string::npos);
  }

  CliRun c = m4({"compat", "--firmware", fw_, bundle_, "--pubkey", key_ + ".pub", "--log-level", "warn"});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find(" ok "), std::string::npos) << c.out;
}

TEST_F(BundleCli, ExportFromARunDirectoryKeepsItsProvenance) {
  const fs::path run = tmp_ / "run";
  fs::create_directory(run);
  fs::copy_file(adapter_, run / "adapter.safetensors");
  const TaskConfig task = load_task_config(cfg_, {}, test::repo_dir());
  const Firmware fw = Firmware::open(fw_);
  RunRecord rec;
  rec.finished = true;
  rec.task = task.task;
  rec.path = task.path;
  rec.config = task.resolved;
  if (!task.prompt.empty()) {
    const PromptTemplate t = load_prompt_template(test::repo_dir(), task.prompt);
    rec.prompt_id = t.id;
    rec.prompt_template = t.to_json();
    rec.labels = t.labels;
  }
  rec.firmware_id = fw.id();
  rec.firmware_name = fw.manifest().name;
  rec.firmware_version = fw.manifest().version;
  rec.datasets["train"] = {"train.h5", "sha256:" + std::string(64, '1')};
  rec.metrics["bleu"] = 12.5;
  rec.steps = 300;
  write_run_record(run, rec);
  const std::string out = (tmp_ / "run.m4adapter").string();
  CliRun e = m4({"export", "--run", run.string(), "--firmware", fw_, "--key", key_ + ".key", "--out", out});
  ASSERT_EQ(e.code, 0) << e.err;
  ASSERT_EQ(verify(out, fw_).code, 0);
  const nlohmann::json m = nlohmann::json::parse(entries(test::slurp(out))[0].second);
  EXPECT_EQ(m["provenance"]["metrics"]["bleu"], 12.5);
  EXPECT_EQ(m["provenance"]["training"]["steps"], 300);
  EXPECT_EQ(m["provenance"]["dataset_digests"]["train"], "sha256:" + std::string(64, '1'));
  // A run trained on another firmware is refused before anything is written.
  const std::string b_fw = demo("fw-b", "1");
  const std::string out2 = (tmp_ / "run2.m4adapter").string();
  expect_one_line_error(m4({"export", "--run", run.string(), "--firmware", b_fw, "--key", key_ + ".key", "--out", out2}),
                        {"trained on firmware_id", "hint: export against the firmware the run trained on"});
  EXPECT_FALSE(fs::exists(out2));
  expect_one_line_error(m4({"export", "--run", run.string(), "--adapter", adapter_, "--firmware", fw_, "--key",
                            key_ + ".key", "--out", out2}),
                        {"give either --run RUN_DIR or --adapter A --task CONFIG"});
}

// An adapter holding a NaN exports nothing: every output it gave would be NaN.
TEST_F(BundleCli, ExportRefusesAnAdapterWithNaN) {
  SafetensorsFile f = SafetensorsFile::open(adapter_);
  NamedTensors tensors;
  for (const auto& info : f.tensors()) tensors.emplace_back(info.name, f.tensor(info).clone());
  tensors.front().second.view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
  const fs::path bad = tmp_ / "nan.safetensors";
  write_safetensors(bad, tensors, f.metadata());
  const std::string out = (tmp_ / "nan.m4adapter").string();
  expect_one_line_error(m4({"export", "--adapter", bad.string(), "--task", cfg_, "--firmware", fw_, "--key", key_ + ".key",
                            "--out", out}),
                        {"nan.safetensors", "holds NaN or infinite values", "1 NaN"});
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(BundleCli, ExportIsReproducibleWithSourceDateEpoch) {
  ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  const std::string a = (tmp_ / "r1.m4adapter").string(), b = (tmp_ / "r2.m4adapter").string();
  ASSERT_EQ(export_bundle(a, key_ + ".key").code, 0);
  ASSERT_EQ(export_bundle(b, key_ + ".key").code, 0);
  ::unsetenv("SOURCE_DATE_EPOCH");
  EXPECT_EQ(test::slurp(a), test::slurp(b));
  Entries ea = entries(test::slurp(a));
  EXPECT_NE(named(ea, "manifest.json.minisig").find("timestamp=1700000000"), std::string::npos);
}

TEST_F(BundleCli, VerifyAcceptsASignatureMadeByDebianMinisign) {
  if (!fs::exists(kMinisign)) GTEST_SKIP() << "no " << kMinisign;
  const fs::path d = tmp_ / "ms";
  fs::create_directory(d);
  const std::string pub = (d / "k.pub").string(), key = (d / "k.key").string();
  ASSERT_EQ(std::system((std::string(kMinisign) + " -G -W -p " + pub + " -s " + key + " >/dev/null").c_str()), 0);
  Entries e = original();
  write_file_atomic(d / "manifest.json", e[0].second);
  const std::string comment = minisign::parse_signature(named(e, "manifest.json.minisig"), "s").trusted_comment;
  ASSERT_EQ(std::system((std::string(kMinisign) + " -S -H -s " + key + " -m " + (d / "manifest.json").string() + " -t '" +
                         comment + "' >/dev/null").c_str()), 0);
  const fs::path b = d / "ms.m4adapter";
  named(e, "manifest.json.minisig") = test::slurp(d / "manifest.json.minisig");
  write_file_atomic(b, make_tar(e));
  CliRun r = m4({"verify", b.string(), "--pubkey", pub, "--firmware", fw_});
  EXPECT_EQ(r.code, 0) << r.err;
  // And m4forge export signs with minisign's -W secret key directly.
  CliRun x = export_bundle((d / "x.m4adapter").string(), key);
  ASSERT_EQ(x.code, 0) << x.err;
  EXPECT_EQ(m4({"verify", (d / "x.m4adapter").string(), "--pubkey", pub}).code, 0);
}

TEST_F(BundleCli, PasswordProtectedKey) {
  write_file_atomic(tmp_ / "pw", "correct horse\n");
  write_file_atomic(tmp_ / "bad", "wrong horse\n");
  const std::string k = (tmp_ / "pk").string();
  ASSERT_EQ(m4({"keygen", "--out", k, "--password-file", (tmp_ / "pw").string(), "--kdf", "interactive"}).code, 0);
  const std::string out = (tmp_ / "p.m4adapter").string();
  expect_one_line_error(export_bundle(out, k + ".key"), {"password-protected", "--password-file"});
  expect_one_line_error(m4({"export", "--adapter", adapter_, "--task", cfg_, "--firmware", fw_, "--key", k + ".key",
                            "--password-file", (tmp_ / "bad").string(), "--out", out}),
                        {"wrong password"});
  EXPECT_FALSE(fs::exists(out));
  ASSERT_EQ(m4({"export", "--adapter", adapter_, "--task", cfg_, "--firmware", fw_, "--key", k + ".key", "--password-file",
                (tmp_ / "pw").string(), "--out", out}).code, 0);
  EXPECT_EQ(m4({"verify", out, "--pubkey", k + ".pub"}).code, 0);
}

TEST_F(BundleCli, ExportRefusesAnAdapterThatDoesNotFitTheFirmware) {
  const std::string other = (tmp_ / "fixture-fw").string();
  ASSERT_EQ(m4({"firmware", "import-hf", "--backbone", (test::fixtures() / "llama").string(), "--name", "fixture", "--version",
                "1.0.0", "--out", other, "--log-level", "warn"}).code, 0);
  const std::string out = (tmp_ / "o.m4adapter").string();
  expect_one_line_error(export_bundle(out, key_ + ".key", other), {"has shape", "firmware fixture@1.0.0"});
  EXPECT_FALSE(fs::exists(out));
  expect_one_line_error(export_bundle((tmp_ / "o.tar").string(), key_ + ".key"), {"must end in .m4adapter"});
}

// --- hostile bundles: one test each ---

TEST_F(BundleCli, RefusesAFlippedByteInTheTensorData) {
  std::string b = test::slurp(bundle_);
  Entries e = entries(b);
  const size_t off = b.find(e[1].second) + e[1].second.size() - 3;  // inside the last tensor's bytes
  b[off] ^= 0x01;
  expect_refused("tensor.m4adapter", b, {"adapter.safetensors digest mismatch", "tensor data was changed"});
}

TEST_F(BundleCli, RefusesAFlippedByteInTheManifest) {
  Entries e = original();
  e[0].second[e[0].second.find("translation_de_en") + 2] ^= 0x01;
  expect_refused("manifest.m4adapter", make_tar(e), {"manifest.json.minisig: signature does not verify"});
}

TEST_F(BundleCli, RefusesAFlippedByteInTheSignature) {
  Entries e = original();
  std::string& s = named(e, "manifest.json.minisig");
  const size_t line2 = s.find('\n') + 1;
  const size_t at = s.find('\n', line2) - 10;  // inside the 64 signature bytes
  s[at] = s[at] == 'A' ? 'B' : 'A';
  expect_refused("signature.m4adapter", make_tar(e), {"manifest.json.minisig: signature does not verify"});
}

TEST_F(BundleCli, RefusesAFlippedByteInTheTrustedComment) {
  Entries e = original();
  std::string& s = named(e, "manifest.json.minisig");
  s[s.find("task=") + 5] ^= 0x01;
  expect_refused("comment.m4adapter", make_tar(e), {"trusted comment signature does not verify"});
}

TEST_F(BundleCli, RefusesAnExtraFile) {
  Entries e = original();
  e.push_back({"README", "hello"});
  expect_refused("extra.m4adapter", make_tar(e), {"tar: unexpected entry 'README'", "a bundle holds only"});
}

TEST_F(BundleCli, RefusesAMissingFile) {
  Entries e = original();
  e.erase(e.begin() + 1);
  expect_refused("missing.m4adapter", make_tar(e), {"tar: missing entry 'adapter.safetensors'"});
}

TEST_F(BundleCli, RefusesASymlinkEntry) {
  Entries e = original();
  expect_refused("symlink.m4adapter", make_tar(e, {{"adapter.safetensors", '2'}}),
                 {"entry 'adapter.safetensors' is a symbolic link"});
}

TEST_F(BundleCli, RefusesAHardLinkEntry) {
  Entries e = original();
  expect_refused("hardlink.m4adapter", make_tar(e, {{"manifest.json.minisig", '1'}}),
                 {"entry 'manifest.json.minisig' is a hard link"});
}

TEST_F(BundleCli, RefusesAnAbsolutePath) {
  Entries e = original();
  e[1].first = "/adapter.safetensors";
  expect_refused("absolute.m4adapter", make_tar(e), {"entry '/adapter.safetensors' has an absolute path"});
}

TEST_F(BundleCli, RefusesADotDotPath) {
  Entries e = original();
  e[0].first = "../manifest.json";
  expect_refused("dotdot.m4adapter", make_tar(e), {"entry '../manifest.json' has a '..' path"});
}

TEST_F(BundleCli, RefusesATruncatedTar) {
  const std::string b = test::slurp(bundle_);
  expect_refused("truncated.m4adapter", b.substr(0, b.size() / 2), {"tar: entry 'adapter.safetensors' claims",
                                                                      "truncated archive"});
  expect_refused("truncated-end.m4adapter", b.substr(0, b.size() - 1024), {"truncated archive (no end-of-archive blocks"});
}

// A directory, a FIFO or a device given as the bundle: refused at once (a FIFO
// would block a reader waiting for a writer), saying what it is.
TEST_F(BundleCli, RefusesWhatIsNotARegularFile) {
  const fs::path dir = tmp_ / "dir.m4adapter", fifo = tmp_ / "fifo.m4adapter";
  fs::create_directory(dir);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  CliRun d = verify(dir.string());
  expect_one_line_error(d, {dir.string(), "not a regular file", "a directory"});
  EXPECT_EQ(d.code, 5);
  expect_one_line_error(verify(fifo.string()), {fifo.string(), "not a regular file", "FIFO"});
  expect_one_line_error(verify("/dev/zero"), {"/dev/zero", "not a regular file", "device"});
  expect_one_line_error(verify((tmp_ / "absent.m4adapter").string()), {"absent.m4adapter", "no such bundle file"});
}

TEST_F(BundleCli, RefusesABundleSignedByAnotherKey) {
  ASSERT_EQ(m4({"keygen", "--out", (tmp_ / "other").string()}).code, 0);
  const std::string b = (tmp_ / "other.m4adapter").string();
  ASSERT_EQ(export_bundle(b, (tmp_ / "other.key").string()).code, 0);
  const std::string other_id = minisign::read_public_key(tmp_ / "other.pub").key_id();
  expect_refused("other-key.m4adapter", test::slurp(b), {"signature made by key " + other_id, "not by the given public key"});
}

TEST_F(BundleCli, RefusesALegacyNonPrehashedSignature) {
  Entries e = original();
  const auto key = minisign::read_secret_key(key_ + ".key", std::nullopt);
  named(e, "manifest.json.minisig") = minisign::sign_legacy(key, e[0].second, minisign::parse_signature(named(e, "manifest.json.minisig"), "s").trusted_comment);
  expect_refused("legacy.m4adapter", make_tar(e), {"legacy non-prehashed signature (Ed) refused"});
}

TEST_F(BundleCli, RefusesATrustedCommentNamingAnotherFirmware) {
  Entries e = original();
  const auto key = minisign::read_secret_key(key_ + ".key", std::nullopt);
  named(e, "manifest.json.minisig") = minisign::sign(key, e[0].second, "m4forge bundle task=x firmware_id=sha256:" + std::string(64, '0'));
  expect_refused("comment-id.m4adapter", make_tar(e), {"trusted comment names firmware_id 'sha256:000"});
}

TEST_F(BundleCli, RefusesATrustedCommentNamingAnotherTask) {
  Entries e = original();
  const auto key = minisign::read_secret_key(key_ + ".key", std::nullopt);
  std::string comment = minisign::parse_signature(named(e, "manifest.json.minisig"), "s").trusted_comment;
  const size_t at = comment.find("task=");
  ASSERT_NE(at, std::string::npos) << comment;
  comment.replace(at, comment.find(' ', at) - at, "task=fashion_mnist");
  named(e, "manifest.json.minisig") = minisign::sign(key, e[0].second, comment);
  expect_refused("comment-task.m4adapter", make_tar(e), {"trusted comment 'm4forge bundle task=fashion_mnist",
                                                         "does not match the manifest"});
}

TEST_F(BundleCli, RefusesAnEntryWithAnotherMode) {
  std::string b = test::slurp(bundle_);
  b.replace(100, 7, "0004755");  // the manifest's header: setuid + executable
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(b[i]);
  char s[8];
  std::snprintf(s, sizeof s, "%06o", sum);
  b.replace(148, 6, s);
  expect_refused("mode.m4adapter", b, {"entry 'manifest.json' has mode 4755", "0644"});
}

TEST_F(BundleCli, RefusesAManifestClaimingATensorTheAdapterLacks) {
  const std::string b = resigned([](nlohmann::json& m) {
    m["adapter"]["tensors"].push_back({{"name", "backbone.layers.0.mlp.up_proj.lora_a"}, {"dtype", "F32"}, {"shape", {4, 8}}});
  });
  expect_refused("claims.m4adapter", b, {"adapter tensors: the manifest lists 'backbone.layers.0.mlp.up_proj.lora_a', which "
                                          "adapter.safetensors lacks"});
}

TEST_F(BundleCli, RefusesATenGigabyteSizeClaim) {
  std::string b = test::slurp(bundle_);
  const size_t h = pad(original()[0].second).size() + 512;  // the adapter's header
  b.replace(h + 124, 12, "112402762000");                  // 10,000,000,000 in octal, full width
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(b[h + i]);
  char s[8];
  std::snprintf(s, sizeof s, "%06o", sum);
  b.replace(h + 148, 6, s, 6);
  expect_refused("huge.m4adapter", b, {"entry 'adapter.safetensors' claims 10000000000 bytes, over its limit of 4294967296"});
}

// Binding means content: a firmware whose bytes were edited in place (same
// size, same firmware.json) binds nothing that depends on the edited module.
TEST_F(BundleCli, AFirmwareEditedInPlaceBindsNothingThatDependsOnIt) {
  // A module the translation bundle does not use: still bound (only what it depends on is re-hashed).
  test::flip_byte_near_end(fs::path(fw_) / "img_enc" / "model.safetensors");
  EXPECT_EQ(verify(bundle_, fw_).code, 0);
  // The backbone it adapts: refused by verify, compat and run.
  test::flip_byte_near_end(fs::path(fw_) / "backbone" / "model.safetensors");
  CliRun v = verify(bundle_, fw_);
  expect_one_line_error(v, {bundle_, "firmware binding", "module 'backbone' content changed since import"});
  EXPECT_EQ(v.code, 4);
  expect_one_line_error(m4({"compat", "--firmware", fw_, bundle_, "--pubkey", key_ + ".pub"}),
                        {"module 'backbone' content changed since import"});
  expect_one_line_error(m4({"run", "--firmware", fw_, "--bundle", bundle_, "--pubkey", key_ + ".pub", "--text", "Hallo Welt"}),
                        {"firmware binding", "module 'backbone' content changed"});
}

TEST_F(BundleCli, RefusesABundleForFirmwareAOnFirmwareB) {
  const std::string b_fw = demo("fw-b", "1");  // same shapes, other weights
  expect_refused("other-fw.m4adapter", test::slurp(bundle_), {"firmware binding: bundle is bound to m4-demo@",
                                                               "hint: m4forge compat"}, b_fw);
  CliRun run = m4({"run", "--firmware", b_fw, "--bundle", bundle_, "--pubkey", key_ + ".pub", "--text", "Hallo"});
  expect_one_line_error(run, {"firmware binding"});
}

// A quantized firmware is derived from the one a bundle was made on (and the
// reverse): compat names the relation, refuses it by default, measures the
// canary there and deploys it with --allow-derived; verify and run stay exact.
TEST_F(BundleCli, AQuantizedFirmwareIsDerivedNeitherOkNorRetrain) {
  const std::string pub = key_ + ".pub";
  const std::string q8 = (tmp_ / "q8").string(), q4 = (tmp_ / "q4").string();
  CliRun qr = m4({"firmware", "quantize", fw_, "--out", q8, "--log-level", "warn"});
  ASSERT_EQ(qr.code, 0) << qr.err;
  EXPECT_NE(qr.out.find("firmware_id: sha256:"), std::string::npos) << qr.out;
  ASSERT_EQ(m4({"firmware", "quantize", fw_, "--bits", "4", "--group-size", "8", "--out", q4, "--log-level", "warn"}).code, 0);
  // A negative group size is refused, not taken for the default.
  expect_one_line_error(m4({"firmware", "quantize", fw_, "--group-size", "-5", "--out", (tmp_ / "qneg").string()}),
                        {"--group-size must be 0 (per channel) or >= 2, found -5"});
  EXPECT_FALSE(fs::exists(tmp_ / "qneg"));
  CliRun inspect = m4({"firmware", "inspect", q8});
  EXPECT_NE(inspect.out.find("derived_from: an 8-bit quantization (backbone, per-channel scales) of m4-demo@1.0.0 (" +
                             Firmware::open(fw_).id() + ")"),
            std::string::npos)
      << inspect.out;

  // A bundle made on FW, against FW's INT8 quantization.
  CliRun refused = m4({"compat", "--firmware", q8, bundle_, "--pubkey", pub, "--json"});
  expect_one_line_error(refused, {"compat: 1 of 1 bundles are not deployable", "--allow-derived"});
  const nlohmann::json rj = nlohmann::json::parse(refused.out);
  EXPECT_EQ(rj["bundles"][0]["status"], "derived");
  EXPECT_EQ(rj["bundles"][0]["detail"], "derived: firmware m4-demo-int8@1.0.0 is an 8-bit quantization (backbone, "
                                        "per-channel scales) of m4-demo@1.0.0 (the bundle's firmware m4-demo@1.0.0)");
  // The canary was run on the INT8 firmware: quantization moved the outputs, and the adapter still acts.
  const std::string canary = rj["bundles"][0]["canary"].get<std::string>();
  EXPECT_EQ(canary.rfind("drift: max |diff| ", 0), 0u) << canary;
  CliRun allowed = m4({"compat", "--firmware", q8, bundle_, "--pubkey", pub, "--allow-derived"});
  EXPECT_EQ(allowed.code, 0) << allowed.out << allowed.err;
  EXPECT_NE(allowed.out.find("derived"), std::string::npos) << allowed.out;
  // --allow-retrain is another policy.
  expect_one_line_error(m4({"compat", "--firmware", q8, bundle_, "--pubkey", pub, "--allow-retrain"}), {"compat: 1 of 1"});
  // verify and run bind exactly, and say how the firmwares relate.
  expect_refused("on-q8.m4adapter", test::slurp(bundle_),
                 {"firmware binding: bundle is bound to m4-demo@1.0.0", "derived: firmware m4-demo-int8@1.0.0 is an 8-bit",
                  "compat --allow-derived"},
                 q8);

  // The reverse: the adapter exported on the INT8 firmware binds to it, and against FW it is derived.
  const std::string on_q8 = (tmp_ / "q8.m4adapter").string();
  CliRun ex = export_bundle(on_q8, key_ + ".key", q8);
  ASSERT_EQ(ex.code, 0) << ex.err;
  CliRun v = verify(on_q8, q8);
  EXPECT_EQ(v.code, 0) << v.err;
  Entries eq = entries(test::slurp(on_q8)), eo = original();
  const nlohmann::json mq = nlohmann::json::parse(named(eq, "manifest.json"));
  EXPECT_EQ(mq["firmware"]["firmware_id"], Firmware::open(q8).id());
  EXPECT_EQ(mq["firmware"]["derived_from"]["bits"], 8);
  // Its touched tensors have the shapes the weights dequantize to: the source's.
  EXPECT_EQ(mq["firmware"]["touched"], nlohmann::json::parse(named(eo, "manifest.json"))["firmware"]["touched"]);
  CliRun back = m4({"compat", "--firmware", fw_, on_q8, "--pubkey", pub, "--json"});
  expect_one_line_error(back, {"compat: 1 of 1"});
  EXPECT_EQ(nlohmann::json::parse(back.out)["bundles"][0]["detail"],
            "derived: the bundle's firmware m4-demo-int8@1.0.0 is an 8-bit quantization (backbone, per-channel scales) of "
            "m4-demo@1.0.0 (this firmware)");
  // Two quantizations of one firmware are derived from each other through it.
  CliRun sib = m4({"compat", "--firmware", q4, on_q8, "--pubkey", pub, "--json"});
  EXPECT_EQ(nlohmann::json::parse(sib.out)["bundles"][0]["detail"],
            "derived: firmware m4-demo-int4@1.0.0 is a 4-bit quantization (backbone, groups of 8) of m4-demo@1.0.0, and the "
            "bundle's firmware m4-demo-int8@1.0.0 is an 8-bit quantization (backbone, per-channel scales) of m4-demo@1.0.0");
}

TEST_F(BundleCli, CompatClassifiesOkRetrainIncompatibleAndBad) {
  const std::string b_fw = demo("fw-b", "1");
  const std::string fixture = (tmp_ / "fixture-fw").string();
  ASSERT_EQ(m4({"firmware", "import-hf", "--backbone", (test::fixtures() / "llama").string(), "--name", "fixture", "--version",
                "1.0.0", "--out", fixture, "--log-level", "warn"}).code, 0);
  std::string bad = test::slurp(bundle_);
  bad[bad.find("\"translation_de_en\"") + 3] ^= 1;
  write_file_atomic(tmp_ / "bad.m4adapter", bad);
  const std::string pub = key_ + ".pub";

  CliRun ok = m4({"compat", "--firmware", fw_, bundle_, "--pubkey", pub});
  EXPECT_EQ(ok.code, 0) << ok.err;

  CliRun re = m4({"compat", "--firmware", b_fw, bundle_, "--pubkey", pub});
  EXPECT_NE(re.out.find("retrain"), std::string::npos) << re.out;
  expect_one_line_error(re, {"compat: 1 of 1 bundles are not deployable", "--allow-retrain"});
  // Other weights under the adapter: its canary measures the drift, and the row is not deployable even so.
  EXPECT_NE(re.out.find("; canary drift: max |diff| "), std::string::npos) << re.out;
  CliRun drift = m4({"compat", "--firmware", b_fw, bundle_, "--pubkey", pub, "--allow-retrain", "--json"});
  expect_one_line_error(drift, {"compat: 1 of 1", "only where its canary holds"});
  const nlohmann::json dj = nlohmann::json::parse(drift.out);
  EXPECT_EQ(dj["bundles"][0]["status"], "retrain");
  EXPECT_FALSE(dj["bundles"][0]["accepted"].get<bool>());
  EXPECT_EQ(dj["bundles"][0]["canary"].get<std::string>().rfind("drift: max |diff| ", 0), 0u) << dj.dump(1);
  // A firmware without a module the bundle never uses (imu_enc): another
  // firmware_id over a byte-identical backbone. Retrain by id; the canary
  // holds, so --allow-retrain deploys it.
  const fs::path renamed = tmp_ / "fw-without-imu";
  fs::copy(fw_, renamed, fs::copy_options::recursive);
  {
    auto modules = Firmware::open(fw_).manifest().modules;
    modules.erase("imu_enc");
    nlohmann::json fj = nlohmann::json::parse(test::slurp(renamed / "firmware.json"));
    fj["modules"].erase("imu_enc");
    fj["firmware_id"] = firmware_id_of(modules);
    write_file_atomic(renamed / "firmware.json", fj.dump(1) + "\n");
  }
  CliRun same = m4({"compat", "--firmware", renamed.string(), bundle_, "--pubkey", pub, "--allow-retrain"});
  EXPECT_EQ(same.code, 0) << same.out << same.err;
  EXPECT_NE(same.out.find("weights are identical"), std::string::npos) << same.out;
  EXPECT_NE(same.out.find("; canary ok: max |diff| 0 <="), std::string::npos) << same.out;

  CliRun in = m4({"compat", "--firmware", fixture, bundle_, (tmp_ / "bad.m4adapter").string(), "--pubkey", pub, "--json"});
  expect_one_line_error(in, {"compat: 2 of 2"});
  const nlohmann::json j = nlohmann::json::parse(in.out);
  ASSERT_EQ(j["bundles"].size(), 2u);
  EXPECT_EQ(j["bundles"][0]["status"], "incompatible");
  EXPECT_NE(j["bundles"][0]["detail"].get<std::string>().find("tensor 'backbone.layers.0.self_attn.q_proj.weight' has shape"),
            std::string::npos) << j.dump(1);
  EXPECT_EQ(j["bundles"][1]["status"], "bad");
  EXPECT_FALSE(j["bundles"][1]["accepted"].get<bool>());
  EXPECT_NE(j["bundles"][1]["detail"].get<std::string>().find("manifest.json.minisig"), std::string::npos) << j.dump(1);
}

TEST_F(BundleCli, ACanaryRefusesAnAdapterZeroedAndResignedAsNoEffect) {
  // Every adapter tensor zeroed, the manifest's digest updated and signed again:
  // the bundle verifies, binds and loads, and does nothing. The canary sees it.
  const std::string b = resigned([](nlohmann::json&) {}, [](Entries& e, nlohmann::json& m) {
    std::string& a = named(e, "adapter.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, a.data(), 8);
    std::fill(a.begin() + 8 + static_cast<int64_t>(n), a.end(), '\0');
    m["adapter"]["sha256"] = "sha256:" + to_hex(sha256(a));
  });
  expect_refused("zeroed.m4adapter", b, {"canary: no effect: the outputs are the firmware's own without the adapter",
                                         "but the adapter changed them by"});
  // run refuses it too, before any prediction.
  write_file_atomic(tmp_ / "zeroed.m4adapter", b);
  const CliRun r = m4({"run", "--firmware", fw_, "--bundle", (tmp_ / "zeroed.m4adapter").string(), "--pubkey", key_ + ".pub",
                       "--text", "Guten Morgen"});
  expect_one_line_error(r, {"zeroed.m4adapter: canary: no effect"});
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(BundleCli, ACanaryRefusesOutputsThatMovedAsDriftWithTheFigure) {
  // The outputs recorded at export moved by 0.5 on one logit (re-signed): what
  // a device computing differently would see. Refused, with the figure.
  const std::string b = resigned([](nlohmann::json&) {}, [](Entries& e, nlohmann::json& m) {
    std::string& c = named(e, "canary.safetensors");
    float v = 0;
    const size_t at = tensor_offset(c, "expected.adapter");
    std::memcpy(&v, c.data() + at, 4);
    v += 0.5f;
    std::memcpy(c.data() + at, &v, 4);
    m["canary"]["sha256"] = "sha256:" + to_hex(sha256(c));
  });
  expect_refused("drift.m4adapter", b, {"canary: drift: max |diff| 0.5 > tolerance"});
}

TEST_F(BundleCli, TheCanaryIsPinnedByTheManifest) {
  Entries e = original();
  named(e, "canary.safetensors")[200] ^= 1;
  expect_refused("canary-flip.m4adapter", make_tar(e), {"canary.safetensors digest mismatch"});
  Entries without = original();
  without.erase(without.begin() + 2);
  expect_refused("canary-gone.m4adapter", make_tar(without), {"the manifest pins canary.safetensors but the bundle has none"});
  // A bundle made before canaries (no canary, a manifest without one) still verifies, and says so.
  const std::string old = resigned([](nlohmann::json& m) { m.erase("canary"); }, [](Entries& x, nlohmann::json&) {
    x.erase(x.begin() + 2);
  });
  write_file_atomic(tmp_ / "old.m4adapter", old);
  const CliRun v = verify((tmp_ / "old.m4adapter").string(), fw_);
  ASSERT_EQ(v.code, 0) << v.err;
  EXPECT_NE(v.out.find("canary:      none (a bundle made before canaries)"), std::string::npos) << v.out;
  // But a canary the manifest does not pin is refused: the signature would not cover it.
  Entries extra = entries(old);
  extra.insert(extra.begin() + 2, {"canary.safetensors", named(e, "canary.safetensors")});
  expect_refused("canary-unpinned.m4adapter", make_tar(extra), {"canary.safetensors is in the bundle but the manifest does not pin it"});
}

TEST_F(BundleCli, RunPredictsALabelForAClassificationBundle) {
  const std::string cfg = (test::repo_dir() / "configs" / "tasks" / "text_classification.yaml").string();
  const std::string a = make_adapter(fw_, tmp_ / "cls.safetensors", cfg);
  const std::string b = (tmp_ / "cls.m4adapter").string();
  CliRun e = m4({"export", "--adapter", a, "--task", cfg, "--firmware", fw_, "--key", key_ + ".key", "--out", b});
  ASSERT_EQ(e.code, 0) << e.err;
  CliRun r = m4({"run", "--firmware", fw_, "--bundle", b, "--pubkey", key_ + ".pub", "--text", "Stocks fell sharply today",
                 "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::set<std::string> labels = {"World\n", "Sports\n", "Business\n", "Sci/Tech\n"};
  EXPECT_TRUE(labels.count(r.out)) << r.out;
  std::cout << "[run] classification prediction: " << r.out;
}

TEST_F(BundleCli, RunVerifiesLoadsAndGenerates) {
  CliRun r = m4({"run", "--firmware", fw_, "--bundle", bundle_, "--pubkey", key_ + ".pub", "--text", "Guten Morgen",
                 "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  std::cout << "[run] prediction: " << r.out;
}

TEST_F(BundleCli, RunClassifiesAnImuCsvFile) {
  const std::string cfg = (test::repo_dir() / "configs" / "tasks" / "har.yaml").string();  // Path-2 with a projector
  const std::string a = make_adapter(fw_, tmp_ / "har.safetensors", cfg);
  const std::string b = (tmp_ / "har.m4adapter").string();
  CliRun e = m4({"export", "--adapter", a, "--task", cfg, "--firmware", fw_, "--key", key_ + ".key", "--out", b});
  ASSERT_EQ(e.code, 0) << e.err;
  std::ofstream csv(tmp_ / "walk.csv");
  csv << "ax,ay,az,gx,gy,gz\n";
  for (int t = 0; t < 100; ++t) csv << 0.1 * t << ",0,9.8,0,0," << (t % 7) * 0.01 << "\n";  // shorter than the window
  csv.close();
  CliRun r = m4({"run", "--firmware", fw_, "--bundle", b, "--pubkey", key_ + ".pub", "--input", (tmp_ / "walk.csv").string(),
                 "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::set<std::string> labels = {"walking\n", "running\n", "sitting\n", "standing\n", "climbing stairs\n", "cycling\n"};
  EXPECT_TRUE(labels.count(r.out)) << r.out;
  std::ofstream(tmp_ / "bad.csv") << "1,2,3,4,5,6\n1,2,3,4,5\n";
  CliRun bad = m4({"run", "--firmware", fw_, "--bundle", b, "--pubkey", key_ + ".pub", "--input", (tmp_ / "bad.csv").string()});
  expect_one_line_error(bad, {"bad.csv:2", "expected 6 numbers"});
}

// An image input too wide to preprocess names the file (fashion_mnist: Path-2 on img_enc).
TEST_F(BundleCli, RunNamesAnImageInputItRefuses) {
  const std::string cfg = (test::repo_dir() / "configs" / "tasks" / "fashion_mnist.yaml").string();
  const std::string a = make_adapter(fw_, tmp_ / "fm.safetensors", cfg);
  const std::string b = (tmp_ / "fm.m4adapter").string();
  ASSERT_EQ(m4({"export", "--adapter", a, "--task", cfg, "--firmware", fw_, "--key", key_ + ".key", "--out", b}).code, 0);
  test::write_flat_png(tmp_ / "tall.png", 1, 1, 100000);
  expect_one_line_error(m4({"run", "--firmware", fw_, "--bundle", b, "--pubkey", key_ + ".pub", "--input",
                            (tmp_ / "tall.png").string()}),
                        {"tall.png: ", "aspect ratio over 32:1"});
}

}  // namespace
}  // namespace m4
