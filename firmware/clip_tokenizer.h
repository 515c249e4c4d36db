// CLIP's byte-level BPE tokenizer from `vocab.json` + `merges.txt`, as HF
// transformers' CLIPTokenizer (tokenization_clip.py, 4.33) runs without ftfy.
#pragma once

#include <array>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace m4 {

// The special tokens, by text (HF's defaults for openai/clip-*: the pad token is
// "<|endoftext|>", so padding repeats eos). Each must be in vocab.json.
struct ClipTokenizerOptions {
  std::string bos_token = "<|startoftext|>";
  std::string eos_token = "<|endoftext|>";
  std::string unk_token = "<|endoftext|>";
  std::string pad_token = "<|endoftext|>";
};

struct ClipBatch {
  at::Tensor input_ids;       // (B, T) int64, padded on the right with pad_id
  at::Tensor attention_mask;  // (B, T) int64, 1 on real tokens (bos and eos included)
};

// Text -> ids:
//  0. The special tokens' texts (bos/eos/unk/pad) are cut out first and kept
//     whole, as HF's added-token split does.
//  1. HF's BasicTokenizer(strip_accents=False, do_split_on_punc=False): drop
//     NUL, U+FFFD and every character of category C* (control, format,
//     surrogate, private use, unassigned), map whitespace to spaces, put spaces
//     around CJK ideographs, NFC-normalise, split on whitespace, lowercase each
//     word (Python's str.lower(): full case mapping, final sigma); then join
//     with single spaces.
//  2. Split with CLIP's pattern
//       <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
//  3. Each piece's UTF-8 bytes -> GPT-2's bytes_to_unicode symbols, "</w>" on
//     the last symbol, BPE merges by rank (cached per piece), vocab lookup
//     (unknown -> unk).
// Unicode classes, NFC and case come from ICU; they agree on every code point with
// what HF runs on Debian 12 (Python 3.11's unicodedata, Unicode 14.0, for what is
// dropped; the regex module, Unicode 15.0, for \p{L} and \p{N}; see
// clip_tokenizer.cpp). Invalid UTF-8 bytes decode to U+FFFD and are dropped.
// Tested against HF's CLIPTokenizer on real strings (tests/fixtures/hf-frontends).
// GPT-2's bytes_to_unicode(): the 256 UTF-8 symbols byte-level BPE uses for bytes.
const std::array<std::string, 256>& clip_byte_symbols();

class ClipTokenizer {
 public:
  // Throws m4::Error naming the file for a missing/unreadable file, a vocab.json
  // that is not an object of token -> id, or a malformed merges line (with its
  // line number).
  static ClipTokenizer load(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt,
                            const ClipTokenizerOptions& options = {});
  // The same from file contents; `vocab_where`/`merges_where` name them in errors.
  static ClipTokenizer from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                    const std::string& vocab_where, const std::string& merges_where,
                                    const ClipTokenizerOptions& options = {});

  // The BPE tokens of a text, without bos/eos ("a</w>", "photo</w>", ...).
  std::vector<std::string> tokenize(std::string_view text) const;
  // bos + tokens + eos.
  std::vector<int64_t> encode(std::string_view text) const;
  // Each text encoded, truncated to max_length (bos + first max_length-2 tokens
  // + eos, as HF's truncation=True), padded with pad_id on the right to
  // max_length (pad_to_max_length, HF's padding="max_length") or to the longest
  // row (HF's padding=True).
  ClipBatch encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                         bool pad_to_max_length = true) const;
  // As HF's decode: tokens joined, bytes restored, "</w>" -> space, special
  // tokens kept as separate words unless skipped, clean_up_tokenization_spaces.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }
  int64_t num_merges() const { return static_cast<int64_t>(ranks_.size()); }
  // The id of a vocab entry, or -1.
  int64_t token_to_id(const std::string& token) const;

 private:
  ClipTokenizer() = default;  // through load / from_strings only
  struct Cache;
  std::vector<std::string> bpe(const std::string& piece) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> ranks_;  // "first second" -> rank
  std::vector<std::string> specials_;               // bos/eos/unk/pad texts
  int64_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
  std::shared_ptr<Cache> cache_;
  std::string where_;
};

}  // namespace m4
