// C interface of the SentencePiece shim (a separate shared object).
// Why a shim: Debian's libsentencepiece bundles and exports its own copy of
// protobuf-lite, which collides with the libprotobuf LibTorch loads (a crash in
// static initialisation). The shim links libsentencepiece and is dlopen()ed
// with RTLD_LOCAL | RTLD_DEEPBIND, so each library keeps its own protobuf.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {
// All functions return 0 on success; on failure they write a NUL-terminated
// message into err (capacity errlen) and return non-zero.
typedef struct m4spm m4spm;
int m4spm_load(const char* model, size_t model_len, m4spm** out, char* err, size_t errlen);
void m4spm_free(m4spm* p);
// ids: caller buffer of capacity cap; *count receives the number of ids (which
// may exceed cap; then call again with a larger buffer).
int m4spm_encode(const m4spm* p, const char* text, size_t len, int32_t* ids, size_t cap,
                 size_t* count, char* err, size_t errlen);
// out: caller buffer; *len receives the byte length needed (may exceed cap).
int m4spm_decode(const m4spm* p, const int32_t* ids, size_t n, char* out, size_t cap,
                 size_t* len, char* err, size_t errlen);
// Special token ids (-1 if absent) and the vocabulary size.
void m4spm_info(const m4spm* p, int32_t* vocab, int32_t* bos, int32_t* eos, int32_t* pad,
                int32_t* unk);
// Trains a model from in-memory sentences with trainer flags `args`
// (`--vocab_size=...`); the serialized ModelProto is malloc()ed into *model.
int m4spm_train(const char* args, const char* const* sentences, size_t n, char** model,
                size_t* model_len, char* err, size_t errlen);
}
