// Reads and verifies a .m4adapter bundle in place (mmap, nothing extracted):
// tar structure, minisign signature, manifest, digests, adapter header.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bundle/bundle_manifest.h"
#include "bundle/minisign.h"

namespace m4 {

class MappedFile;

// The entries of a bundle, as views into `archive` (`canary` empty in bundles
// made before canaries).
struct BundleEntries {
  std::string_view manifest, adapter, signature, canary;
};
// Structure checks only (the known names, each once, regular files, bounds).
BundleEntries read_bundle_entries(std::string_view archive, const std::string& where);

struct VerifiedBundle {
  std::filesystem::path path;
  std::shared_ptr<const MappedFile> file;  // keeps `adapter` valid
  BundleManifest manifest;
  std::string trusted_comment;
  std::string_view adapter;  // adapter.safetensors bytes, inside the mapping
  std::string_view canary;   // canary.safetensors bytes (digest checked); empty when the bundle has none
};

// Every check that needs no firmware; throws one m4::Error "<bundle>: <check>: ...".
// `key` null skips only the signature check (compat without --pubkey).
VerifiedBundle verify_bundle(const std::filesystem::path& bundle, const minisign::PublicKey* key);
// The same against a set of trusted keys: the one whose id the signature
// names checks it; a signature by any other key is m4::Error(kMismatch).
VerifiedBundle verify_bundle(const std::filesystem::path& bundle, const std::vector<minisign::PublicKey>& trusted);
// The same on bytes already in memory (fuzzing, tests); `where` names them.
VerifiedBundle verify_bundle_bytes(std::string_view archive, const minisign::PublicKey* key, const std::string& where);

}  // namespace m4
