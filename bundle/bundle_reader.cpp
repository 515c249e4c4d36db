// Bundle verification, in the order that gives the most useful one-line error:
// structure, then the signature (which pins the manifest), then everything the
// manifest pins (trusted comment binding, adapter digest, adapter header).
#include "bundle/bundle_reader.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "bundle/tar_archive.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"

namespace m4 {
namespace k = bundlekeys;

namespace {

// The adapter's safetensors header against the manifest's tensor list (both sorted by name).
void check_adapter_header(std::string_view bytes, const BundleManifest& m, const std::string& where) {
  const std::string w = where + ": adapter.safetensors";
  M4_CHECK(bytes.size() >= 8, ErrorCode::kBadInput, w, ": too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  M4_CHECK(n <= kMaxSafetensorsHeader && n <= bytes.size() - 8, ErrorCode::kBadInput, w, ": header length ", n,
           " exceeds the file");
  const SafetensorsHeader h = parse_safetensors_header(bytes.substr(8, n), bytes.size() - 8 - n, w);
  std::vector<const TensorInfo*> have;
  for (const auto& t : h.tensors) have.push_back(&t);
  std::sort(have.begin(), have.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->name < b->name; });
  std::vector<const BundleTensor*> want;
  for (const auto& t : m.adapter_tensors) want.push_back(&t);
  std::sort(want.begin(), want.end(), [](const BundleTensor* a, const BundleTensor* b) { return a->name < b->name; });
  size_t i = 0, j = 0;
  while (i < want.size() || j < have.size()) {
    if (j == have.size() || (i < want.size() && want[i]->name < have[j]->name)) {
      M4_FAIL(ErrorCode::kMismatch, where, ": adapter tensors: the manifest lists '", want[i]->name,
              "', which adapter.safetensors lacks");
    }
    if (i == want.size() || have[j]->name < want[i]->name) {
      M4_FAIL(ErrorCode::kMismatch, where, ": adapter tensors: adapter.safetensors holds '", have[j]->name,
              "', which the manifest does not list");
    }
    M4_CHECK(have[j]->shape == want[i]->shape && dtype_name(have[j]->dtype) == want[i]->dtype, ErrorCode::kMismatch, where,
             ": adapter tensors: '", want[i]->name, "' is ", dtype_name(have[j]->dtype), " ", shape_str(have[j]->shape),
             " in adapter.safetensors but the manifest says ", want[i]->dtype, " ", shape_str(want[i]->shape));
    ++i;
    ++j;
  }
}

}  // namespace

BundleEntries read_bundle_entries(std::string_view archive, const std::string& where) {
  const std::map<std::string, uint64_t> limits = {{k::kManifestFile, k::kMaxManifestBytes},
                                                  {k::kAdapterFile, k::kMaxAdapterBytes},
                                                  {k::kSignatureFile, k::kMaxSignatureBytes},
                                                  {k::kCanaryFile, k::kMaxCanaryBytes}};
  BundleEntries e;
  bool m = false, a = false, s = false;
  for (const TarEntry& t : read_tar(archive, limits, where)) {
    if (t.name == k::kManifestFile) {
      e.manifest = t.data;
      m = true;
    } else if (t.name == k::kAdapterFile) {
      e.adapter = t.data;
      a = true;
    } else if (t.name == k::kSignatureFile) {
      e.signature = t.data;
      s = true;
    } else if (t.name == k::kCanaryFile) {
      e.canary = t.data;
    }
  }
  const char* missing = !m ? k::kManifestFile : !a ? k::kAdapterFile : !s ? k::kSignatureFile : nullptr;
  M4_CHECK(!missing, ErrorCode::kBadInput, where, ": tar: missing entry '", missing, "' (a bundle holds exactly ",
           k::kManifestFile, ", ", k::kAdapterFile, ", ", k::kSignatureFile, ")");
  return e;
}

namespace {

// The key a signature is checked with, chosen once it is parsed; null: not checked.
using KeyChoice = std::function<const minisign::PublicKey*(const minisign::Signature&)>;

VerifiedBundle verify_archive(std::string_view archive, const KeyChoice& choose_key, const std::string& where) {
  const BundleEntries e = read_bundle_entries(archive, where);

  const minisign::Signature sig = minisign::parse_signature(e.signature, where + ": " + k::kSignatureFile);
  if (const minisign::PublicKey* key = choose_key(sig)) minisign::verify(*key, sig, e.manifest, where + ": " + k::kSignatureFile);

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(e.manifest.begin(), e.manifest.end());
  } catch (const nlohmann::json::exception& ex) {
    M4_FAIL(ErrorCode::kBadInput, where, ": manifest.json: not valid JSON (", ex.what(), ")");
  }
  VerifiedBundle v;
  v.manifest = BundleManifest::from_json(j, where + ": manifest.json");
  v.trusted_comment = sig.trusted_comment;
  const std::string comment_id = firmware_id_in_comment(sig.trusted_comment);
  M4_CHECK(comment_id == v.manifest.firmware_id, ErrorCode::kMismatch, where, ": trusted comment names firmware_id '",
           comment_id, "' but the manifest binds to '", v.manifest.firmware_id, "'");
  // The rest of the comment too (task, timestamp): what a reader shown only the
  // trusted comment (minisign -V) sees must be what the manifest says.
  M4_CHECK(sig.trusted_comment == v.manifest.trusted_comment(), ErrorCode::kMismatch, where, ": trusted comment '",
           sig.trusted_comment.substr(0, 200), "' does not match the manifest (expected '", v.manifest.trusted_comment(), "')");

  M4_CHECK(e.adapter.size() == v.manifest.adapter_size, ErrorCode::kMismatch, where, ": adapter.safetensors has ",
           e.adapter.size(), " bytes but the manifest says ", v.manifest.adapter_size);
  const std::string digest = "sha256:" + to_hex(sha256(e.adapter));
  M4_CHECK(digest == v.manifest.adapter_sha256, ErrorCode::kMismatch, where,
           ": adapter.safetensors digest mismatch (", digest, ", manifest says ", v.manifest.adapter_sha256,
           "): the tensor data was changed");
  check_adapter_header(e.adapter, v.manifest, where);
  v.adapter = e.adapter;
  // The canary: present exactly when the manifest pins it, and its bytes the pinned ones.
  if (v.manifest.canary) {
    const auto& c = *v.manifest.canary;
    M4_CHECK(!e.canary.empty(), ErrorCode::kBadInput, where, ": tar: the manifest pins ", k::kCanaryFile, " but the bundle has none");
    M4_CHECK(e.canary.size() == c.size, ErrorCode::kMismatch, where, ": ", k::kCanaryFile, " has ", e.canary.size(),
             " bytes but the manifest says ", c.size);
    const std::string cd = "sha256:" + to_hex(sha256(e.canary));
    M4_CHECK(cd == c.sha256, ErrorCode::kMismatch, where, ": ", k::kCanaryFile, " digest mismatch (", cd, ", manifest says ",
             c.sha256, ")");
    v.canary = e.canary;
  } else {
    M4_CHECK(e.canary.empty(), ErrorCode::kMismatch, where, ": tar: ", k::kCanaryFile,
             " is in the bundle but the manifest does not pin it (not covered by the signature)");
  }
  return v;
}

VerifiedBundle verify_file(const std::filesystem::path& bundle, const KeyChoice& choose_key) {
  const std::string where = bundle.string();
  check_regular_file(bundle, "bundle file");
  M4_CHECK(std::filesystem::file_size(bundle) > 0, ErrorCode::kBadInput, where, ": tar: empty file");
  auto file = MappedFile::open(bundle);
  VerifiedBundle v = verify_archive(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), choose_key, where);
  v.path = bundle;
  v.file = std::move(file);
  return v;
}

}  // namespace

VerifiedBundle verify_bundle_bytes(std::string_view archive, const minisign::PublicKey* key, const std::string& where) {
  return verify_archive(archive, [key](const minisign::Signature&) { return key; }, where);
}

VerifiedBundle verify_bundle(const std::filesystem::path& bundle, const minisign::PublicKey* key) {
  return verify_file(bundle, [key](const minisign::Signature&) { return key; });
}

VerifiedBundle verify_bundle(const std::filesystem::path& bundle, const std::vector<minisign::PublicKey>& trusted) {
  return verify_file(bundle, [&](const minisign::Signature& sig) -> const minisign::PublicKey* {
    std::string ids;
    for (const auto& k : trusted) {
      if (k.keynum == sig.keynum) return &k;
      ids += (ids.empty() ? "" : ", ") + k.key_id();
    }
    minisign::PublicKey signer;
    signer.keynum = sig.keynum;
    M4_FAIL(ErrorCode::kMismatch, bundle.string(), ": ", k::kSignatureFile, ": signed by key ", signer.key_id(),
            ", which is not one of the trusted keys (", ids, ")");
  });
}

}  // namespace m4
