#!/usr/bin/env python3
"""Sonic Pi sample bank -> 2 s clips labelled by bank name (see audio_classification.sh)."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audio_util as au

SRC = "/usr/share/sonic-pi/samples"
SR, SECONDS, MAX_SEG = 16000, 2, 4
EXCLUDE = {"misc", "mehackit"}   # 3 unrelated sounds / a contributor's mixed bank

def main(outdir, test_every):
    files = sorted(f for f in os.listdir(SRC) if f.endswith(".flac"))
    by_class = {}
    for f in files:
        c = f.split("_", 1)[0]
        if c not in EXCLUDE:
            by_class.setdefault(c, []).append(f)
    labels = sorted(by_class)
    n = SR * SECONDS
    rows = {"train": [], "test": []}
    counts = {}
    for c in labels:
        for i, f in enumerate(by_class[c]):
            split = "test" if i % test_every == 1 else "train"
            x, sr = au.read_mono(os.path.join(SRC, f), max_seconds=SECONDS * MAX_SEG + 1)
            x = au.resample(x, sr, SR)
            p = au.peak(x)
            if p == 0:
                continue
            x = au.scale(x, 0.9 / p)
            ref = au.rms(x[:n]) or au.rms(x)
            segs = 0
            for k in range(MAX_SEG):
                seg = x[k * n:(k + 1) * n]
                if len(seg) == 0 or (k > 0 and (len(seg) < n // 2 or au.rms(seg) < ref * 0.03)):
                    break
                rel = os.path.join(split, c, "%s_%d.wav" % (f[:-5], k))
                os.makedirs(os.path.join(outdir, split, c), exist_ok=True)
                au.write_wav16(os.path.join(outdir, rel), au.place(seg, n, 0), SR)
                rows[split].append((rel, c))
                segs += 1
            cnt = counts.setdefault(c, [0, 0, 0, 0])
            j = 0 if split == "train" else 1
            cnt[j] += 1
            cnt[2 + j] += segs
    for split, rs in rows.items():
        rs.sort()
        with open(os.path.join(outdir, split + ".csv"), "w") as f:
            f.write("file,label\n")
            for rel, c in rs:
                f.write("%s,%s\n" % (rel, c))
    with open(os.path.join(outdir, "counts.tsv"), "w") as f:
        f.write("label\ttrain_files\ttest_files\ttrain_clips\ttest_clips\n")
        for c in labels:
            f.write("%s\t%d\t%d\t%d\t%d\n" % ((c,) + tuple(counts[c])))
        f.write("TOTAL\t%d\t%d\t%d\t%d\n" % tuple(sum(v[i] for v in counts.values()) for i in range(4)))
    print("%d %d %s" % (len(rows["train"]), len(rows["test"]), ",".join(labels)))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
