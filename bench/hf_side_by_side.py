#!/usr/bin/env python3
"""Hugging Face side of bench/hf_side_by_side.sh (LoRA training throughput, HF PEFT vs m4forge).

Needs Hugging Face transformers 4.33 and peft 0.5 importable (PYTHONPATH) on a Python with torch,
e.g. Debian's /usr/bin/python3 with python3-torch. Subcommands:

  make  --out DIR     a seeded LlamaForCausalLM (issue 18's shape by default) saved in HF layout
                      to DIR/hf, and seeded token ids DIR/ids.safetensors (input_ids int64 [rows, seq])
  train --hf DIR --ids FILE --precision f32|bf16 --threads N --out JSON
                      LoRA on q_proj, v_proj (r 8, alpha 16, dropout 0), AdamW lr 1e-4 wd 0.01;
                      step k trains on rows [k*batch, (k+1)*batch) mod rows; each step is timed;
                      writes the step times, the first loss and the peak RSS
  run --out JSON -- CMD...   runs CMD and writes its wall time and peak RSS (m4forge's runs)
  summarize --out DIR        DIR/runs.jsonl -> the table (markdown) on stdout and DIR/summary.md
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

# transformers 4.33 imports its sentencepiece tokenizers when the sentencepiece module is importable,
# and they need the `tokenizers` package; only token ids are used here.
sys.modules.setdefault("sentencepiece", None)


def make(a):
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(a.seed)
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.heads,
                      max_position_embeddings=max(512, a.seq), rms_norm_eps=1e-6, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(os.path.join(a.out, "hf"), safe_serialization=True)
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, a.vocab, (a.rows, a.seq), generator=g, dtype=torch.int64)
    save_file({"input_ids": ids}, os.path.join(a.out, "ids.safetensors"))
    # One batch alone, for the first-loss check (m4forge's loader shuffles the rows).
    save_file({"input_ids": ids[:4].clone()}, os.path.join(a.out, "ids4.safetensors"))
    print(f"make: {os.path.join(a.out, 'hf')} and ids {list(ids.shape)}")


def train(a):
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(a.hf, torch_dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = load_file(a.ids)["input_ids"]
    rows = ids.shape[0]
    times, losses = [], []
    for step in range(a.warmup + a.steps):
        idx = torch.arange(step * a.batch, (step + 1) * a.batch) % rows
        batch = ids[idx]
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    timed = times[a.warmup:]
    tokens = a.batch * ids.shape[1]
    out = {"precision": a.precision, "threads": a.threads, "tokens_per_step": tokens,
           "step_times_s": timed, "median_step_s": statistics.median(timed),
           "tokens_per_s": tokens / statistics.median(timed), "first_loss": losses[0],
           "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           "torch": torch.__version__}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"hf {a.precision} threads {a.threads}: {out['tokens_per_s']:.0f} tokens/s, first loss {losses[0]:.7f}")


def run(a):
    import subprocess
    t0 = time.perf_counter()
    rc = subprocess.call(a.argv[1:] if a.argv[:1] == ["--"] else a.argv)
    wall = time.perf_counter() - t0
    with open(a.out, "w") as f:
        json.dump({"rc": rc, "wall_s": wall, "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, f)
    sys.exit(rc)


def m4_tokens_per_s(run_dir, warmup, tokens):
    steps = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]
    timed = [s["step_time_s"] for s in steps[warmup:]]
    return tokens / statistics.median(timed), steps[0]["loss"]


def summarize(a):
    runs = [json.loads(line) for line in open(os.path.join(a.out, "runs.jsonl")) if line.strip()]
    ceiling = {c["dtype"]: c for c in (json.loads(line) for line in open(os.path.join(a.out, "ceiling.jsonl")))}
    by = {}
    for r in runs:
        by.setdefault(r["variant"], []).append(r)
    med = {v: statistics.median(x["tokens_per_s"] for x in rs) for v, rs in by.items()}
    rss = {v: max(x["peak_rss_kib"] for x in rs) for v, rs in by.items()}
    lines = [f"CPU: {a.cpu}", "", "| variant | tokens/s (median of %d rounds) | peak RSS MiB | effective GFLOP/s "
             "| of the GEMM ceiling | first loss |" % max(len(rs) for rs in by.values()), "|---|---:|---:|---:|---:|---:|"]
    for v in sorted(by, key=lambda v: (("bf16" in v), v.startswith("m4"), v)):
        prec = "bf16" if "bf16" in v else "f32"
        c = ceiling[prec]
        gf = med[v] * c["flop_per_token"] / 1e9
        lines.append(f"| {v} | {med[v]:.0f} | {rss[v] / 1024:.0f} | {gf:.1f} | {100 * gf / c['ceiling_gflops']:.0f}% "
                     f"(ceiling {c['ceiling_gflops']:.1f}) | {by[v][0]['first_loss']:.7f} |")
    lines.append("")
    sanity = os.path.join(a.out, "sanity.txt")
    if os.path.exists(sanity):
        lines += [f"- {line.strip()}" for line in open(sanity) if line.strip()]
    for prec in ("f32", "bf16"):
        hf = {v: t for v, t in med.items() if v.startswith("hf_" + prec) and not v.endswith("_asis")}
        m4 = med.get("m4_" + prec)
        if hf and m4:
            best = max(hf, key=hf.get)
            lines.append(f"- {prec}: m4forge / HF's best ({best}) = {m4 / hf[best]:.2f}x")
    if "m4_f32" in med and "m4_f32_blas" in med:
        lines.append(f"- m4forge f32 with GEMMs in oneDNN / in OpenBLAS (M4FORGE_F32_GEMM=blas) = "
                     f"{med['m4_f32'] / med['m4_f32_blas']:.2f}x")
    if ceiling["f32"].get("onednn_gflops"):
        c = ceiling["f32"]
        lines.append(f"- f32 GEMM ceiling {c['ceiling_gflops']:.1f} GFLOP/s: each product in the faster library; "
                     f"all in OpenBLAS {c['blas_gflops']:.1f}, all in oneDNN {c['onednn_gflops']:.1f}")
    if "m4_f32" in med and "m4_bf16" in med:
        lines.append(f"- m4forge bf16 / f32 = {med['m4_bf16'] / med['m4_f32']:.2f}x; peak RSS bf16 {rss['m4_bf16'] / 1024:.0f} "
                     f"MiB vs f32 {rss['m4_f32'] / 1024:.0f} MiB")
    text = "\n".join(lines) + "\n"
    open(os.path.join(a.out, "summary.md"), "w").write(text)
    print(text, end="")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    for name, default in (("vocab", 32000), ("hidden", 512), ("intermediate", 1376), ("layers", 8),
                          ("heads", 8), ("seq", 256), ("rows", 64)):
        m.add_argument("--" + name, type=int, default=default)
    t = sub.add_parser("train")
    t.add_argument("--hf", required=True)
    t.add_argument("--ids", required=True)
    t.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--warmup", type=int, default=2)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("argv", nargs=argparse.REMAINDER)
    s = sub.add_parser("summarize")
    s.add_argument("--out", required=True)
    s.add_argument("--cpu", default="?")
    a = p.parse_args()
    {"make": make, "train": train, "run": run, "summarize": summarize}[a.verb](a)


if __name__ == "__main__":
    main()
