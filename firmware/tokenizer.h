// SentencePiece tokenizer (`tokenizer.model`, as LLaMA checkpoints ship it),
// through libsentencepiece behind a dlopen()ed shim (see sentencepiece_shim.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace m4 {

class Tokenizer {
 public:
  // Throws m4::Error naming the file if it is missing or not a SentencePiece model.
  static Tokenizer load(const std::filesystem::path& path);
  static Tokenizer from_bytes(std::string model, const std::string& where);

  std::vector<int64_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return vocab_; }
  int64_t bos_id() const { return bos_; }  // -1 if the model has none
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  const std::string& model_bytes() const { return bytes_; }

  // Trains a SentencePiece model on in-memory sentences; `args` are trainer
  // flags (`--vocab_size=512 --model_type=bpe ...`). Returns the serialized model.
  static std::string train(const std::string& args, const std::vector<std::string>& sentences);

 private:
  struct Handle;
  std::shared_ptr<Handle> handle_;
  std::string bytes_;
  std::string where_;
  int64_t vocab_ = 0, bos_ = -1, eos_ = -1, pad_ = -1;
};

}  // namespace m4
