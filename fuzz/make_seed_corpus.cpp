// Writes the fuzzers' seed corpus: a valid bundle signed with the fuzz key plus
// a few near-misses, and small safetensors files. Usage: make_seed_corpus OUT_DIR
// (writes OUT_DIR/bundle/* and OUT_DIR/safetensors/*).
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "bundle/bundle_manifest.h"
#include "bundle/tar_archive.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "fuzz/fuzz_key.h"

namespace fs = std::filesystem;
using namespace m4;

namespace {

std::string slurp(const fs::path& p) { return read_text_file(p, 1 << 20); }

std::string pad(std::string s) {
  if (s.size() % 512) s.append(512 - s.size() % 512, '\0');
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seed_corpus OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out / "bundle");
  fs::create_directories(out / "safetensors");

  // safetensors: two small tensors with metadata, an empty tensor, a bf16 one.
  write_safetensors(out / "safetensors" / "two.safetensors",
                    {{"a.lora_a", at::arange(6, at::kFloat).reshape({2, 3})}, {"a.lora_b", at::ones({3, 2}, at::kFloat)}},
                    {{"format", "m4forge-adapter/1"}});
  write_safetensors(out / "safetensors" / "empty.safetensors", {{"e", at::zeros({0, 4}, at::kFloat)}});
  write_safetensors(out / "safetensors" / "mixed.safetensors",
                    {{"h", at::ones({4}, at::kBFloat16)}, {"i", at::arange(3, at::kLong)}, {"b", at::ones({2}, at::kBool)}});

  // bundle: a manifest describing two.safetensors, signed with the fuzz key.
  const std::string adapter = slurp(out / "safetensors" / "two.safetensors");
  BundleManifest m;
  m.created = 1700000000;
  m.task = "seed";
  m.path = 3;
  m.prompt_id = "seed";
  m.firmware_id = "sha256:" + std::string(64, 'a');
  m.firmware_name = "seed";
  m.firmware_version = "1.0.0";
  m.module_digests["backbone"] = "sha256:" + std::string(64, 'b');
  m.touched = {{"backbone.a.weight", "", {3, 3}}};
  m.adapter_sha256 = "sha256:" + to_hex(sha256(adapter));
  m.adapter_size = adapter.size();
  m.adapter_tensors = {{"a.lora_a", "F32", {2, 3}}, {"a.lora_b", "F32", {3, 2}}};
  const std::string manifest = m.serialize();
  const std::string sig = minisign::sign(fuzz::fuzz_key(), manifest, m.trusted_comment());
  {
    // What write_bundle_file does, without linking the exporter (and so PEFT and LibTorch modules).
    AtomicFileWriter w(out / "bundle" / "valid.m4adapter");
    TarWriter tar(w, m.created);
    tar.add(bundlekeys::kManifestFile, manifest);
    tar.add(bundlekeys::kAdapterFile, adapter);
    tar.add(bundlekeys::kSignatureFile, sig);
    tar.finish();
    w.commit();
  }
  // Near-misses: each a different early exit, so the fuzzer starts on several paths.
  const std::string end(1024, '\0');
  auto entry = [](const std::string& n, const std::string& d, char type = '0') {
    return tar_header(n, type == '0' ? d.size() : 0, 0, type) + (type == '0' ? pad(d) : "");
  };
  write_file_atomic(out / "bundle" / "missing.m4adapter", entry("manifest.json", manifest) + entry("manifest.json.minisig", sig) + end);
  write_file_atomic(out / "bundle" / "symlink.m4adapter",
                    entry("manifest.json", manifest) + entry("adapter.safetensors", "", '2') + entry("manifest.json.minisig", sig) + end);
  write_file_atomic(out / "bundle" / "legacy.m4adapter",
                    entry("manifest.json", manifest) + entry("adapter.safetensors", adapter) +
                        entry("manifest.json.minisig", minisign::sign_legacy(fuzz::fuzz_key(), manifest, m.trusted_comment())) + end);
  std::printf("wrote seeds under %s\n", out.c_str());
  return 0;
}
