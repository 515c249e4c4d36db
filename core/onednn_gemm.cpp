// f32 GEMMs in oneDNN's matmul primitive, one primitive per shape and layout, kept.
#include "core/onednn_gemm.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <mutex>

#include "core/autocast.h"
#include "core/error.h"

#ifdef M4_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <optional>
#endif

namespace m4 {
namespace {

enum class F32Gemm { kOneDnn, kBlas };

F32Gemm requested() {
  static const F32Gemm choice = [] {
    const char* v = std::getenv("M4FORGE_F32_GEMM");
    const std::string s = v != nullptr ? v : "";
    M4_CHECK(s.empty() || s == "onednn" || s == "blas", ErrorCode::kInvalidArgument,
             "M4FORGE_F32_GEMM=", s, ": expected \"onednn\" or \"blas\"");
    return s == "blas" ? F32Gemm::kBlas : F32Gemm::kOneDnn;
  }();
  return choice;
}

#ifdef M4_WITH_ONEDNN

// An operand oneDNN takes as it is: 2 to 5 dims, every stride positive, and
// the rows or the columns of its matrices contiguous (transposed views are
// fine; a broadcast or a gather view goes to ATen).
bool plain(const at::Tensor& t) {
  if (t.dim() < 2 || t.dim() > 5 || t.numel() == 0) return false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) < 1) return false;
  }
  return t.stride(-1) == 1 || t.stride(-2) == 1;
}

bool takes(const at::Tensor& a, const at::Tensor& b) {
  if (!onednn_f32_gemm() || a.scalar_type() != at::kFloat || b.scalar_type() != at::kFloat || !a.is_cpu() ||
      !b.is_cpu() || a.dim() != b.dim() || !plain(a) || !plain(b) || a.size(-1) != b.size(-2)) {
    return false;
  }
  // Under CPU autocast ATen multiplies in the autocast dtype (f32 attention
  // inputs, promoted by the rotary f32 cos/sin, in bf16 as HF's are): its call.
  if (autocast_enabled(c10::kCPU)) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d) {
    if (a.size(d) != b.size(d)) return false;  // no broadcasting
  }
  // A product autograd must record goes to ATen, which records it.
  return !(at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad()));
}

dnnl::memory::desc md(const at::Tensor& t) {
  return dnnl::memory::desc(t.sizes().vec(), dnnl::memory::data_type::f32, t.strides().vec());
}

// One engine for the process; primitives by (sizes, strides) of the three
// operands, built once: building one takes ~20-100 us, and a training step
// runs ~200 products of a handful of layouts.
struct OneDnn {
  static constexpr size_t kMaxPrimitives = 1024;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  // nullopt: a layout oneDNN refused (dnnl::error); its products go to ATen.
  std::map<std::vector<int64_t>, std::optional<dnnl::matmul>> primitives;

  std::optional<dnnl::matmul> primitive(const at::Tensor& c, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
    std::vector<int64_t> key{accumulate};
    for (const at::Tensor* t : {&a, &b, &c}) {
      key.insert(key.end(), t->sizes().begin(), t->sizes().end());
      key.insert(key.end(), t->strides().begin(), t->strides().end());
    }
    std::lock_guard<std::mutex> lock(mu);
    auto it = primitives.find(key);
    if (it != primitives.end()) return it->second;
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);  // c += a b
      attr.set_post_ops(ops);
    }
    std::optional<dnnl::matmul> mm;
    try {
#if DNNL_VERSION_MAJOR >= 3
      mm = dnnl::matmul(dnnl::matmul::primitive_desc(engine, md(a), md(b), md(c), attr));
#else
      mm = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(md(a), md(b), md(c)), attr, engine));
#endif
    } catch (const dnnl::error&) {
    }
    // Bounded: KV-cached generation makes new attention shapes at every token.
    if (primitives.size() >= kMaxPrimitives) primitives.clear();
    return primitives.emplace(std::move(key), std::move(mm)).first->second;
  }
};

OneDnn& onednn() {
  static OneDnn* o = new OneDnn();  // never destroyed: primitives may run until exit
  return *o;
}

// c = a b (or c += a b) in oneDNN; false when it refused the layout.
bool run(const at::Tensor& c, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  OneDnn& o = onednn();
  const std::optional<dnnl::matmul> mm = o.primitive(c, a, b, accumulate);
  if (!mm) return false;
  dnnl::stream s(o.engine);
  dnnl::memory am(md(a), o.engine, a.data_ptr()), bm(md(b), o.engine, b.data_ptr()), cm(md(c), o.engine, c.data_ptr());
  mm->execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  s.wait();
  return true;
}

#else

bool plain(const at::Tensor&) { return false; }
bool takes(const at::Tensor&, const at::Tensor&) { return false; }
bool run(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool) { return false; }

#endif

std::vector<int64_t> product_sizes(const at::Tensor& a, const at::Tensor& b) {
  std::vector<int64_t> sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  return sizes;
}

}  // namespace

bool onednn_f32_gemm() {
#ifdef M4_WITH_ONEDNN
  return requested() == F32Gemm::kOneDnn;
#else
  return false;
#endif
}

std::string f32_gemm_description() {
#ifdef M4_WITH_ONEDNN
  if (requested() == F32Gemm::kBlas) return "BLAS (M4FORGE_F32_GEMM=blas)";
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
#else
  requested();
  return "BLAS (built without oneDNN)";
#endif
}

at::Tensor gemm(const at::Tensor& a, const at::Tensor& b) {
  if (takes(a, b)) {
    at::Tensor c = at::empty(product_sizes(a, b), a.options());
    if (run(c, a, b, /*accumulate=*/false)) return c;
  }
  return a.dim() == 2 && b.dim() == 2 ? at::mm(a, b) : at::matmul(a, b);
}

void gemm_out(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  if (takes(a, b) && out.scalar_type() == at::kFloat && plain(out) && out.stride(-1) == 1 &&
      out.sizes().vec() == product_sizes(a, b) && !(at::GradMode::is_enabled() && out.requires_grad()) &&
      run(out, a, b, accumulate)) {
    return;
  }
  at::Tensor o = out;  // the same tensor: ATen's out= functions take a mutable handle
  if (o.dim() == 2 && a.dim() == 2 && b.dim() == 2 && o.scalar_type() == a.scalar_type()) {
    if (accumulate) o.addmm_(a, b);
    else at::mm_out(o, a, b);
  } else if (accumulate) {
    o.add_(gemm(a, b));
  } else {
    o.copy_(gemm(a, b));
  }
}

bool gemm_in_onednn(const at::Tensor& a, const at::Tensor& b) { return takes(a, b); }

namespace {

struct MatmulFunction : public torch::autograd::Function<MatmulFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return gemm(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    at::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = gemm(g, b.transpose(-1, -2));
    if (ctx->needs_input_grad(1)) gb = gemm(a.transpose(-1, -2), g);
    return {ga, gb};
  }
};

}  // namespace

at::Tensor differentiable_gemm(const at::Tensor& a, const at::Tensor& b) {
  if (!at::GradMode::is_enabled() || !(a.requires_grad() || b.requires_grad())) return gemm(a, b);
  const bool in_onednn = [&] {
    at::NoGradGuard no_grad;  // takes() refuses what autograd must record
    return takes(a, b);
  }();
  return in_onednn ? MatmulFunction::apply(a, b) : at::matmul(a, b);
}

}  // namespace m4
