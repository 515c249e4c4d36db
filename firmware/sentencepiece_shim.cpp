// The SentencePiece shim: libsentencepiece behind a C API (see the header for why).
#include "firmware/sentencepiece_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Exported by libsentencepiece but not declared in its public headers.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

struct m4spm {
  sentencepiece::SentencePieceProcessor proc;
};

namespace {
// Under RTLD_DEEPBIND, libsentencepiece's std::cerr binds to libstdc++'s own
// (never constructed, since the executable holds the copy-relocated one), so
// any log line would crash: silence its logging before any call.
struct QuietLogs {
  QuietLogs() { sentencepiece::logging::SetMinLogLevel(4); }
} quiet_logs;

int fail(char* err, size_t errlen, const std::string& msg) {
  if (errlen > 0) {
    size_t n = msg.size() < errlen - 1 ? msg.size() : errlen - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return 1;
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  VectorIterator(const char* const* s, size_t n) : s_(s), n_(n) {
    if (n_ > 0) cur_ = s_[0];
  }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    if (++i_ < n_) cur_ = s_[i_];
  }
  const std::string& value() const override { return cur_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const char* const* s_;
  size_t n_;
  size_t i_ = 0;
  std::string cur_;
};
}  // namespace

extern "C" {

int m4spm_load(const char* model, size_t model_len, m4spm** out, char* err, size_t errlen) {
  auto* p = new m4spm();
  auto st = p->proc.LoadFromSerializedProto(std::string(model, model_len));
  if (!st.ok()) {
    delete p;
    return fail(err, errlen, st.ToString());
  }
  *out = p;
  return 0;
}

void m4spm_free(m4spm* p) { delete p; }

int m4spm_encode(const m4spm* p, const char* text, size_t len, int32_t* ids, size_t cap,
                 size_t* count, char* err, size_t errlen) {
  std::vector<int> v;
  auto st = p->proc.Encode(std::string(text, len), &v);
  if (!st.ok()) return fail(err, errlen, st.ToString());
  *count = v.size();
  for (size_t i = 0; i < v.size() && i < cap; ++i) ids[i] = v[i];
  return 0;
}

int m4spm_decode(const m4spm* p, const int32_t* ids, size_t n, char* out, size_t cap,
                 size_t* len, char* err, size_t errlen) {
  std::vector<int> v(ids, ids + n);
  const int size = p->proc.GetPieceSize();
  for (int id : v) {
    if (id < 0 || id >= size) return fail(err, errlen, "token id " + std::to_string(id) +
                                                           " outside the vocabulary of " +
                                                           std::to_string(size));
  }
  std::string s;
  auto st = p->proc.Decode(v, &s);
  if (!st.ok()) return fail(err, errlen, st.ToString());
  *len = s.size();
  if (s.size() <= cap) std::memcpy(out, s.data(), s.size());
  return 0;
}

void m4spm_info(const m4spm* p, int32_t* vocab, int32_t* bos, int32_t* eos, int32_t* pad,
                int32_t* unk) {
  *vocab = p->proc.GetPieceSize();
  *bos = p->proc.bos_id();
  *eos = p->proc.eos_id();
  *pad = p->proc.pad_id();
  *unk = p->proc.unk_id();
}

int m4spm_train(const char* args, const char* const* sentences, size_t n, char** model,
                size_t* model_len, char* err, size_t errlen) {
  VectorIterator it(sentences, n);
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  if (!st.ok()) return fail(err, errlen, st.ToString());
  *model = static_cast<char*>(std::malloc(proto.size()));
  if (*model == nullptr) return fail(err, errlen, "out of memory");
  std::memcpy(*model, proto.data(), proto.size());
  *model_len = proto.size();
  return 0;
}

}  // extern "C"
