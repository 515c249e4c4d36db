// M4's execution paths, the task side (see execution_path.h).
#include "task/execution_path.h"

#include <algorithm>

#include "core/error.h"
#include "firmware/transformer_encoder.h"  // shape_str

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
