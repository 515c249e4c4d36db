// The module architecture table.
#include "firmware/module_arch.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "firmware/ast.h"
#include "firmware/clip.h"
#include "firmware/imu_encoder.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "firmware/whisper_encoder.h"

namespace m4 {
namespace {

// Adapts an arch's Config/Impl pair to the table's function pointers.
template <typename Config, typename Impl>
struct Adapter {
  static nlohmann::json normalize(const nlohmann::json& j, const std::string& where) {
    return Config::from_json(j, where).to_json();
  }
  static void validate(const nlohmann::json& j, const WeightSet& w, const std::string& where) {
    Impl::validate(Config::from_json(j, where), w, where);
  }
  static std::string summary(const nlohmann::json& j) { return Config::from_json(j, "config").summary(); }
  static std::map<std::string, std::vector<int64_t>> shapes(const nlohmann::json& j) {
    return Impl::expected_shapes(Config::from_json(j, "config"));
  }
};

std::string llama_internal(const std::string& stored) {
  return LlamaImpl::ignorable(stored) ? "" : LlamaImpl::internal_name(stored);
}

std::vector<ModuleArch> make_table() {
  using L = Adapter<LlamaConfig, LlamaImpl>;
  using I = Adapter<ImuEncoderConfig, ImuEncoderImpl>;
  using W = Adapter<WhisperEncoderConfig, WhisperEncoderImpl>;
  using A = Adapter<AstConfig, AstImpl>;
  using CV = Adapter<ClipVisionConfig, ClipVisionImpl>;
  using CT = Adapter<ClipTextConfig, ClipTextImpl>;
  // CLIP's shapes depend on whether the config has a projection.
  auto cv_shapes = +[](const nlohmann::json& j) {
    auto c = ClipVisionConfig::from_json(j, "config");
    return ClipVisionImpl::expected_shapes(c, c.projection_dim > 0);
  };
  auto ast_preprocessor = +[](const nlohmann::json& j, const nlohmann::json& p, const std::string& where) {
    return AstConfig::from_json(j, where).with_preprocessor(p, where).to_json();
  };
  auto ct_shapes = +[](const nlohmann::json& j) {
    auto c = ClipTextConfig::from_json(j, "config");
    return ClipTextImpl::expected_shapes(c, c.projection_dim > 0);
  };
  return {
      {"llama", "backbone", L::normalize, llama_internal, LlamaImpl::stored_name, L::shapes, L::validate,
       L::summary, {"tokenizer.model"}},
      {"clip_vision", "img_enc", CV::normalize, ClipVisionImpl::internal_name, ClipVisionImpl::stored_name,
       cv_shapes, CV::validate, CV::summary, {}},
      {"clip_text", "txt_enc", CT::normalize, ClipTextImpl::internal_name, ClipTextImpl::stored_name, ct_shapes,
       CT::validate, CT::summary, {"vocab.json", "merges.txt"}},
      {"whisper_encoder", "aud_i_enc", W::normalize, WhisperEncoderImpl::internal_name,
       WhisperEncoderImpl::stored_name, W::shapes, W::validate, W::summary, {}},
      {"ast", "aud_b_enc", A::normalize, AstImpl::internal_name, AstImpl::stored_name, A::shapes, A::validate,
       A::summary, {}, ast_preprocessor},
      {"imu", "imu_enc", I::normalize, ImuEncoderImpl::internal_name, ImuEncoderImpl::stored_name, I::shapes,
       I::validate, I::summary, {}},
  };
}

}  // namespace

const std::vector<ModuleArch>& module_archs() {
  static const std::vector<ModuleArch> table = make_table();
  return table;
}

const ModuleArch& module_arch(const std::string& name) {
  std::string known;
  for (const auto& a : module_archs()) {
    if (a.name == name) return a;
    known += (known.empty() ? "" : ", ") + a.name;
  }
  M4_FAIL(ErrorCode::kBadInput, "unknown arch '", name, "' (known: ", known, ")");
}

const ModuleArch& arch_for_slot(const std::string& slot) {
  std::string known;
  for (const auto& a : module_archs()) {
    if (a.slot == slot) return a;
    known += (known.empty() ? "" : ", ") + a.slot;
  }
  M4_FAIL(ErrorCode::kInvalidArgument, "unknown module '", slot, "' (modules: ", known, ")");
}

}  // namespace m4
