// The task side of M4's execution paths (§3.3): which modules a path runs,
// Path-2's cosine logits and label texts (Path-1's prefix placement is the
// backbone's: firmware/llama.h prepend_prefix).
//   Path-1  encoder -> projector -> backbone -> head (captioning, VQA, SLU)
//   Path-2  encoders only: cosine similarity of an input's embedding with the
//           txt_enc embeddings of templated label texts (classification, HAR)
//   Path-3  backbone -> head on text (QA, translation, text classification)
// (Path-4, a generator alone, is not trained here.) A task runs only the
// modules its path names.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace m4 {

// The firmware modules a path runs; `encoder` is the input encoder slot
// (img_enc, aud_i_enc, aud_b_enc, imu_enc) for paths 1 and 2.
std::vector<std::string> path_modules(int path, const std::string& encoder);

// Path-2 logits: scale * cos(a_i, b_j) for inputs a (B, P) and labels b (L, P) -> (B, L).
at::Tensor cosine_logits(const at::Tensor& a, const at::Tensor& b, double scale = 100.0);

// "There is a photo of a {label}." with {label} replaced; a template without
// {label} is an error naming it.
std::string render_label_template(const std::string& templ, const std::string& label);

}  // namespace m4
