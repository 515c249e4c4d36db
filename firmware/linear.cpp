// Frozen Linear layer.
#include "firmware/linear.h"

namespace m4 {

LinearImpl::LinearImpl(at::Tensor w, at::Tensor b) {
  weight = register_parameter("weight", std::move(w), /*requires_grad=*/false);
  if (b.defined()) bias = register_parameter("bias", std::move(b), /*requires_grad=*/false);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::linear(x, merged_weight.defined() ? merged_weight : weight, bias);
  if (adapter && !merged_weight.defined()) y = y + adapter->delta(x);
  return y;
}

}  // namespace m4
