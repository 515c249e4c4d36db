// M4's execution paths (see paths.h).
#include "firmware/paths.h"

#include "firmware/error.h"
#include "firmware/llama.h"
#include "firmware/transformer_encoder.h"

namespace m4 {

std::vector<std::string> path_modules(int path, const std::string& encoder) {
  static const std::vector<std::string> kEncoders = {"img_enc", "aud_i_enc", "aud_b_enc", "imu_enc"};
  M4_CHECK(path >= 1 && path <= 3, ErrorCode::kInvalidArgument, "path ", path,
           " is not 1 (encoder -> backbone), 2 (encoders only) or 3 (backbone only)");
  if (path == 3) return {"backbone"};
  M4_CHECK(std::find(kEncoders.begin(), kEncoders.end(), encoder) != kEncoders.end(), ErrorCode::kInvalidArgument,
           "path ", path, " needs an input encoder (img_enc, aud_i_enc, aud_b_enc or imu_enc), found '", encoder, "'");
  if (path == 1) return {encoder, "backbone"};
  return {encoder, "txt_enc"};
}

PrefixedInput prepend_prefix(LlamaImpl& backbone, const at::Tensor& prefix, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask) {
  const int64_t H = backbone.config().hidden_size;
  M4_CHECK(prefix.dim() == 3 && prefix.size(2) == H, ErrorCode::kInvalidArgument,
           "the projected prefix must be (batch, tokens, ", H, "), found ", shape_str(prefix.sizes()));
  M4_CHECK(input_ids.dim() == 2 && input_ids.size(0) == prefix.size(0), ErrorCode::kInvalidArgument,
           "input_ids must be (", prefix.size(0), ", T), found ", shape_str(input_ids.sizes()));
  const int64_t B = prefix.size(0), N = prefix.size(1);
  at::Tensor text_mask = attention_mask.defined() ? attention_mask.to(at::kLong) : at::ones_like(input_ids, at::kLong);
  // (B, N, H) ++ (B, T, H)
  at::Tensor text = backbone.forward_embeds_of(input_ids);
  PrefixedInput p;
  p.inputs_embeds = at::cat({prefix.to(text.scalar_type()), text}, 1);
  p.attention_mask = at::cat({at::ones({B, N}, text_mask.options()), text_mask}, 1);
  p.position_ids = (p.attention_mask.cumsum(-1) - 1).masked_fill(p.attention_mask.eq(0), 1);
  return p;
}

at::Tensor cosine_logits(const at::Tensor& a, const at::Tensor& b, double scale) {
  M4_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), ErrorCode::kInvalidArgument,
           "Path-2 compares (B, P) with (L, P) embeddings, found ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
           " (hint: the encoders' projection widths must match)");
  auto norm = [](const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); };
  return scale * at::matmul(norm(a.to(at::kFloat)), norm(b.to(at::kFloat)).t());
}

std::string render_label_template(const std::string& templ, const std::string& label) {
  const size_t at = templ.find("{label}");
  M4_CHECK(at != std::string::npos, ErrorCode::kInvalidArgument, "label template '", templ,
           "' has no {label} placeholder");
  return templ.substr(0, at) + label + templ.substr(at + 7);
}

}  // namespace m4
