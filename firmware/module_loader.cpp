// Arch -> module type dispatch for load_firmware_module.
#include "firmware/module_loader.h"

#include "core/error.h"
#include "firmware/ast.h"
#include "firmware/clip.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/firmware.h"
#include "firmware/imu_encoder.h"
#include "firmware/llama.h"
#include "firmware/tokenizer.h"
#include "firmware/whisper_encoder.h"

namespace m4 {

std::shared_ptr<torch::nn::Module> load_firmware_module(const Firmware& fw, const std::string& name) {
  const std::string& arch = fw.module(name).arch;
  if (arch == "llama") return fw.load_backbone({});
  if (arch == "clip_vision") return fw.load_module<ClipVisionConfig, ClipVisionImpl>(name);
  if (arch == "clip_text") return fw.load_module<ClipTextConfig, ClipTextImpl>(name);
  if (arch == "whisper_encoder") return fw.load_module<WhisperEncoderConfig, WhisperEncoderImpl>(name);
  if (arch == "ast") return fw.load_module<AstConfig, AstImpl>(name);
  if (arch == "imu") return fw.load_module<ImuEncoderConfig, ImuEncoderImpl>(name);
  M4_FAIL(ErrorCode::kInternal, fw.dir().string(), ": module ", name, " has arch '", arch, "' with no loader");
}

std::shared_ptr<torch::nn::Module> ModuleCache::get(const std::string& name) {
  auto it = modules_.find(name);
  if (it != modules_.end()) return it->second;
  return modules_.emplace(name, load_firmware_module(fw_, name)).first->second;
}

std::shared_ptr<const Tokenizer> ModuleCache::tokenizer() {
  if (!tokenizer_) tokenizer_ = std::make_shared<const Tokenizer>(fw_.tokenizer());
  return tokenizer_;
}

std::shared_ptr<const ClipTokenizer> ModuleCache::clip_tokenizer() {
  if (!clip_tokenizer_) clip_tokenizer_ = std::make_shared<const ClipTokenizer>(fw_.clip_tokenizer());
  return clip_tokenizer_;
}

}  // namespace m4

namespace m4 {

int64_t firmware_module_width(const torch::nn::Module& m) {
  if (auto* p = dynamic_cast<const LlamaImpl*>(&m)) return p->config().hidden_size;
  if (auto* p = dynamic_cast<const ClipVisionImpl*>(&m)) return p->config().hidden_size;
  if (auto* p = dynamic_cast<const ClipTextImpl*>(&m)) return p->config().hidden_size;
  if (auto* p = dynamic_cast<const WhisperEncoderImpl*>(&m)) return p->config().d_model;
  if (auto* p = dynamic_cast<const AstImpl*>(&m)) return p->config().hidden_size;
  if (auto* p = dynamic_cast<const ImuEncoderImpl*>(&m)) return p->config().hidden_size;
  M4_FAIL(ErrorCode::kInternal, "module ", m.name(), " has no known width");
}

}  // namespace m4
