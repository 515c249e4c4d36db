#!/usr/bin/python3
# peft_reference: the Python side of issue 6's side-by-side comparison with peft_bench.
# A stand-in for Hugging Face transformers' LlamaForCausalLM + peft LoRA: neither
# is installable offline here (not in Debian 12, no network), so this runs the same
# ops as HF's eager path in plain PyTorch (modeling_llama.py 4.4x, "eager"
# attention; peft tuners/lora/layer.py Linear.forward). Debian's python3-torch is
# the same LibTorch 1.13 and the same OpenBLAS as our build. See bench/README.md.
"""Times one LoRA training step of a LLaMA backbone in eager PyTorch, as HF PEFT runs it.

Config (defaults, as peft_bench): hidden 512, 8 layers, 8 heads, intermediate 1376,
vocab 32000, untied LM head, batch 4 x seq 256; LoRA r 8, alpha 16, dropout 0 on
q_proj and v_proj; loss = shifted cross-entropy over every token; AdamW lr 1e-4 on
the LoRA tensors only. What HF does, op for op:
  - RMSNorm: x.float(); x * rsqrt(mean(x^2) + eps); weight * x.to(dtype)
  - rotary: inv_freq = 1 / theta^(arange(0, D, 2) / D); freqs = inv_freq @ positions,
    computed once per forward; q * cos + rotate_half(q) * sin
  - attention: matmul(q, k^T) / sqrt(D) + causal mask (finfo.min above the diagonal),
    softmax in float32, dropout(p=0), matmul with v, o_proj
  - MLP: down(silu(gate(x)) * up(x)); residual adds around both blocks
  - logits = lm_head(norm(x)).float(); loss = CrossEntropyLoss over
    logits[:, :-1].contiguous() and labels[:, 1:]
  - LoRA: base(x) + lora_B(lora_A(dropout(x))) * alpha / r, base frozen
Weights are seeded N(0, 0.02^2) (norms 1), drawn in the same order and from the same
generator as peft_bench, so both programs build the same model.
"""
import argparse
import ctypes
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    hint = ""
    if sys.executable != "/usr/bin/python3":
        hint = f" This is {sys.executable}; Debian's package is for /usr/bin/python3 (try: /usr/bin/python3 {sys.argv[0]})."
    sys.exit(f"peft_reference: cannot import torch ({e}). Install Debian's PyTorch: "
             f"apt-get install -y python3-torch.{hint}")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("threads", 2), ("iters", 5), ("hidden", 512), ("intermediate", 1376), ("layers", 8),
                          ("heads", 8), ("vocab", 32000), ("seq", 256), ("batch", 4), ("r", 8)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="ATen intra-op threads (default: --threads, as torch.set_num_threads(threads) in an HF script); "
                        "OpenBLAS always gets --threads")
    a = p.parse_args()
    for k, v in vars(a).items():
        setattr(a, k, max(1, v) if k != "torch_threads" else v)  # as peft_bench
    a.torch_threads = a.torch_threads if a.torch_threads > 0 else a.threads
    return a


class RMSNorm(nn.Module):
    def __init__(self, weight, eps):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def frozen_linear(weight):
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    lin.weight = nn.Parameter(weight, requires_grad=False)
    return lin


class LoraLinear(nn.Module):
    """peft.tuners.lora.Linear: the frozen base layer plus B(A(dropout(x))) * scaling."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_dropout = nn.Identity()  # lora_dropout = 0
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha / r

    def forward(self, x):
        result = self.base_layer(x)
        dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        result = result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return result.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.q_proj, self.k_proj = frozen_linear(w["q_proj"]), frozen_linear(w["k_proj"])
        self.v_proj, self.o_proj = frozen_linear(w["v_proj"]), frozen_linear(w["o_proj"])
        self.heads = heads
        self.head_dim = w["q_proj"].shape[0] // heads
        self.attention_dropout = 0.0

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        shape = (B, T, self.heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        c, s = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, D)
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        # num_key_value_heads == heads: repeat_kv is the identity.
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)  # (B, H, T, T)
        w = w + mask[:, :, :, : k.shape[-2]]
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        w = F.dropout(w, p=self.attention_dropout, training=self.training)
        out = torch.matmul(w, v)  # (B, H, T, D)
        out = out.transpose(1, 2).contiguous().reshape(B, T, -1)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.gate_proj, self.up_proj = frozen_linear(w["gate_proj"]), frozen_linear(w["up_proj"])
        self.down_proj = frozen_linear(w["down_proj"])

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, w, heads, eps):
        super().__init__()
        self.input_layernorm = RMSNorm(w["input_layernorm"], eps)
        self.self_attn = Attention(w, heads)
        self.post_attention_layernorm = RMSNorm(w["post_attention_layernorm"], eps)
        self.mlp = MLP(w)

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaForCausalLM(nn.Module):
    def __init__(self, weights, a, eps=1e-5, theta=10000.0):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.embed_tokens.weight = nn.Parameter(weights["embed_tokens.weight"], requires_grad=False)
        self.layers = nn.ModuleList()
        for i in range(a.layers):
            p = f"layers.{i}."
            w = {k[len(p):].split(".")[-2]: v for k, v in weights.items() if k.startswith(p)}
            self.layers.append(DecoderLayer(w, a.heads, eps))
        self.norm = RMSNorm(weights["norm.weight"], eps)
        self.lm_head = frozen_linear(weights["lm_head.weight"])
        D = a.hidden // a.heads
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D)),
                             persistent=False)

    def rotary(self, x, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    def forward(self, input_ids, labels=None):
        B, T = input_ids.shape
        x = self.embed_tokens(input_ids)
        position_ids = torch.arange(T).unsqueeze(0).expand(B, -1)
        cos, sin = self.rotary(x, position_ids)
        # _update_causal_mask (eager, no padding): finfo.min above the diagonal.
        mask = torch.full((T, T), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)
        mask = mask[None, None, :, :].expand(B, 1, -1, -1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.lm_head(self.norm(x)).float()
        if labels is None:
            return logits, None
        shift_logits = logits[..., :-1, :].contiguous()
        shift_labels = labels[..., 1:].contiguous()
        loss = nn.CrossEntropyLoss()(shift_logits.view(-1, shift_logits.shape[-1]), shift_labels.view(-1))
        return logits, loss


def seeded_weights(a):
    """peft_bench's weights: N(0, 0.02^2) from one CPU generator seeded 0, drawn in
    sorted-name order (LlamaImpl::expected_shapes is a std::map); norms are ones."""
    H, I, V = a.hidden, a.intermediate, a.vocab
    shapes = {"embed_tokens.weight": (V, H), "norm.weight": (H,), "lm_head.weight": (V, H)}
    for i in range(a.layers):
        p = f"layers.{i}."
        shapes.update({p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                       p + "self_attn.q_proj.weight": (H, H), p + "self_attn.k_proj.weight": (H, H),
                       p + "self_attn.v_proj.weight": (H, H), p + "self_attn.o_proj.weight": (H, H),
                       p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H),
                       p + "mlp.down_proj.weight": (H, I)})
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name in sorted(shapes):
        out[name] = torch.ones(shapes[name]) if "norm" in name else torch.empty(shapes[name]).normal_(0, 0.02, generator=gen)
    return out


def inject_lora(model, r, alpha, targets=("q_proj", "v_proj")):
    """peft's inject_adapter for target_modules=[q_proj, v_proj]; freezes everything else."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for t in targets:
            setattr(layer.self_attn, t, LoraLinear(getattr(layer.self_attn, t), r, alpha))
    return [p for n, p in model.named_parameters() if "lora_" in n]


def loaded_blas():
    """The BLAS libraries this process mapped (Debian's libblas.so.3 is an alternatives link)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.split()[-1].rsplit("/", 1)[-1]}
    return sorted({os.path.realpath(x) for x in libs})


def set_blas_threads(n):
    """openblas_set_num_threads(n) in the OpenBLAS that torch loaded (otherwise it takes
    OPENBLAS_NUM_THREADS, then OMP_NUM_THREADS, then every core). Returns what it reports."""
    for path in loaded_blas():
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads(ctypes.c_int(n))
            return lib.openblas_get_num_threads()
        except (OSError, AttributeError):
            continue
    return None


def time_median(iters, fn):
    fn()  # warm-up
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return sorted(t)[len(t) // 2]  # as peft_bench: the upper median for even counts


def main():
    a = parse_args()
    torch.set_num_threads(a.torch_threads)
    blas_threads = set_blas_threads(a.threads)
    model = LlamaForCausalLM(seeded_weights(a), a)
    lora = inject_lora(model, a.r, 2 * a.r)
    # As peft_bench: A and B both N(0, 0.01^2) rather than PEFT's B = 0, so that A's
    # gradient is not trivially zero. The arithmetic is the same either way.
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in lora:
            p.normal_(0, 0.01, generator=gen)
    ids = torch.randint(3, a.vocab, (a.batch, a.seq), generator=torch.Generator().manual_seed(1))
    tokens = a.batch * a.seq

    opt = torch.optim.AdamW(lora, lr=1e-4)  # weight_decay 0.01, as torch::optim::AdamWOptions
    model.train()

    def step():
        opt.zero_grad()
        _, loss = model(ids, labels=ids)
        loss.backward()
        opt.step()

    train = time_median(a.iters, step)
    with torch.no_grad():
        fwd = time_median(a.iters, lambda: model(ids))

    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in lora)
    blas = ", ".join(loaded_blas()) or "no BLAS found"
    wait = f", OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}" if "OMP_WAIT_POLICY" in os.environ else ""
    print(f"peft_reference (PyTorch {torch.__version__} eager, HF LlamaForCausalLM + peft LoRA ops): backbone hidden "
          f"{a.hidden}, {a.layers} layers, {a.heads} heads, intermediate {a.intermediate}, vocab {a.vocab}; batch "
          f"{a.batch} x seq {a.seq}; LoRA r {a.r} on q,v; {a.threads} threads: ATen {torch.get_num_threads()}, OpenBLAS {blas_threads}{wait} ({blas})")
    print(f"  LoRA train step (fwd+bwd+AdamW)   {train:8.3f} s  {tokens / train:8.1f} tokens/s")
    print(f"  forward, LoRA unmerged            {fwd:8.3f} s  {tokens / fwd:8.1f} tokens/s")
    print(f"  trainable: {trainable} parameters ({100.0 * trainable / frozen:.4f}% of {frozen} frozen)")


if __name__ == "__main__":
    main()
