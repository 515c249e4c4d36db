// SentencePiece through the dlopen()ed shim.
#include "firmware/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "firmware/sentencepiece_shim.h"

namespace m4 {
namespace {

struct ShimApi {
  decltype(&m4spm_load) load;
  decltype(&m4spm_free) free;
  decltype(&m4spm_encode) encode;
  decltype(&m4spm_decode) decode;
  decltype(&m4spm_info) info;
  decltype(&m4spm_train) train;
};

std::filesystem::path exe_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path();
}

const ShimApi& shim() {
  static ShimApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::filesystem::path> candidates;
    if (const char* env = std::getenv("M4FORGE_SPM_SHIM")) candidates.emplace_back(env);
    const auto dir = exe_dir();
    candidates.push_back(dir / "libm4_spm_shim.so");
    candidates.push_back(dir / "../lib" / "libm4_spm_shim.so");
    candidates.push_back(dir / "../lib/m4forge" / "libm4_spm_shim.so");
    candidates.emplace_back(M4_SPM_SHIM_BUILD_PATH);
    void* h = nullptr;
    std::string tried;
    for (const auto& c : candidates) {
      h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (h != nullptr) break;
      tried.append(" ").append(c.native());
    }
    M4_CHECK(h != nullptr, ErrorCode::kIo,
             "cannot load the SentencePiece shim libm4_spm_shim.so (tried", tried,
             ") (hint: set M4FORGE_SPM_SHIM to its path)");
    auto sym = [&](const char* name) {
      void* s = ::dlsym(h, name);
      M4_CHECK(s != nullptr, ErrorCode::kIo, "SentencePiece shim lacks symbol ", name);
      return s;
    };
    api.load = reinterpret_cast<decltype(api.load)>(sym("m4spm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(sym("m4spm_free"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("m4spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("m4spm_decode"));
    api.info = reinterpret_cast<decltype(api.info)>(sym("m4spm_info"));
    api.train = reinterpret_cast<decltype(api.train)>(sym("m4spm_train"));
  });
  return api;
}

}  // namespace

struct Tokenizer::Handle {
  m4spm* p = nullptr;
  ~Handle() {
    if (p != nullptr) shim().free(p);
  }
};

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  return from_bytes(read_text_file(path, size_t{256} << 20), path.string());
}

Tokenizer Tokenizer::from_bytes(std::string model, const std::string& where) {
  Tokenizer t;
  t.where_ = where;
  t.bytes_ = std::move(model);
  t.handle_ = std::make_shared<Handle>();
  char err[512];
  M4_CHECK(shim().load(t.bytes_.data(), t.bytes_.size(), &t.handle_->p, err, sizeof(err)) == 0,
           ErrorCode::kBadInput, where, ": not a SentencePiece model (", err, ")");
  int32_t vocab, bos, eos, pad, unk;
  shim().info(t.handle_->p, &vocab, &bos, &eos, &pad, &unk);
  t.vocab_ = vocab, t.bos_ = bos, t.eos_ = eos, t.pad_ = pad;
  return t;
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size() + 16);
  size_t count = 0;
  char err[512];
  for (int attempt = 0; attempt < 2; ++attempt) {
    M4_CHECK(shim().encode(handle_->p, text.data(), text.size(), ids.data(), ids.size(), &count,
                           err, sizeof(err)) == 0,
             ErrorCode::kBadInput, where_, ": cannot encode text: ", err);
    if (count <= ids.size()) break;
    ids.resize(count);
  }
  return {ids.begin(), ids.begin() + static_cast<ptrdiff_t>(count)};
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    M4_CHECK(id >= 0 && id < vocab_, ErrorCode::kBadInput, where_, ": token id ", id,
             " is outside the vocabulary of ", vocab_);
    v.push_back(static_cast<int32_t>(id));
  }
  std::string out(ids.size() * 8 + 16, '\0');
  size_t len = 0;
  char err[512];
  for (int attempt = 0; attempt < 2; ++attempt) {
    M4_CHECK(shim().decode(handle_->p, v.data(), v.size(), out.data(), out.size(), &len, err,
                           sizeof(err)) == 0,
             ErrorCode::kBadInput, where_, ": cannot decode: ", err);
    if (len <= out.size()) break;
    out.resize(len);
  }
  out.resize(len);
  return out;
}

std::string Tokenizer::train(const std::string& args, const std::vector<std::string>& sentences) {
  std::vector<const char*> ptrs;
  ptrs.reserve(sentences.size());
  for (const auto& s : sentences) ptrs.push_back(s.c_str());
  char* model = nullptr;
  size_t len = 0;
  char err[512];
  M4_CHECK(shim().train(args.c_str(), ptrs.data(), ptrs.size(), &model, &len, err, sizeof(err)) == 0,
           ErrorCode::kInvalidArgument, "SentencePiece training failed: ", err);
  std::string out(model, len);
  std::free(model);
  return out;
}

}  // namespace m4
