// Path-1 projector: Linear or Linear-GELU-Linear.
#include "firmware/projector.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "firmware/transformer_encoder.h"

namespace m4 {
// PyTorch's nn.Linear default: kaiming_uniform(a=sqrt(5)) weights, i.e.
// U(-1/sqrt(in), 1/sqrt(in)), and the same bound for the bias; seeded.
torch::nn::Linear seeded_linear(int64_t in, int64_t out, at::Generator& gen) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  at::NoGradGuard ng;
  l->weight.uniform_(-bound, bound, gen);
  l->bias.uniform_(-bound, bound, gen);
  return l;
}

ProjectorImpl::ProjectorImpl(const ProjectorOptions& o) : options_(o) {
  M4_CHECK(o.in_features > 0 && o.out_features > 0, ErrorCode::kInvalidArgument,
           "projector needs positive in/out widths, found ", o.in_features, " -> ", o.out_features);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  if (o.kind == "linear") {
    linear = register_module("linear", seeded_linear(o.in_features, o.out_features, gen));
  } else if (o.kind == "mlp") {
    const int64_t h = o.hidden > 0 ? o.hidden : o.out_features;
    fc1 = register_module("fc1", seeded_linear(o.in_features, h, gen));
    fc2 = register_module("fc2", seeded_linear(h, o.out_features, gen));
  } else {
    M4_FAIL(ErrorCode::kInvalidArgument, "projector kind '", o.kind, "' is not linear or mlp");
  }
}

at::Tensor ProjectorImpl::forward(const at::Tensor& x) {
  M4_CHECK(x.size(-1) == options_.in_features, ErrorCode::kInvalidArgument, "projector takes width ",
           options_.in_features, ", found ", shape_str(x.sizes()));
  if (linear) return linear->forward(x);
  return fc2->forward(at::gelu(fc1->forward(x)));
}

}  // namespace m4
