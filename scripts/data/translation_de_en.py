#!/usr/bin/env python3
"""Ding de-en dictionary (trans-de-en) -> German/English sentence pairs JSONL
(see translation_de_en.sh)."""
import hashlib, json, os, re, sys

TEMPLATE = re.compile(r"\b(jd[mnrs]|etw|sb|sth|so)\.", re.I)
MARKUP = [re.compile(r"\{[^{}]*\}"), re.compile(r"\[[^\[\]]*\]"), re.compile(r"<[^<>]*>")]
END = re.compile(r"[.!?]['\"’”]?$")

def clean(s):
    for rx in MARKUP:
        s = rx.sub("", s)
    s = s.replace("’", "'").replace("‘", "'")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([.,!?;:])", r"\1", s)
    return s

def ok(s, min_words):
    if len(s.split()) < min_words or len(s) > 300:
        return False
    if ";" in s or "/" in s or "(" in s or ")" in s or "~" in s or "|" in s:
        return False
    if TEMPLATE.search(s) or "..." in s or "…" in s:
        return False
    return bool(END.search(s)) and s[0].isupper()

def main(src, outdir, test_pct, min_words):
    seen = set()
    pairs = []
    with open(src, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            de, en = line.rstrip("\n").split(" :: ", 1)
            des, ens = de.split(" | "), en.split(" | ")
            if len(des) != len(ens):
                continue
            for d, e in zip(des, ens):
                d, e = clean(d), clean(e)
                if not (ok(d, min_words) and ok(e, min_words)):
                    continue
                if d in seen:
                    continue
                seen.add(d)
                pairs.append((d, e))
    out = {"train": [], "test": []}
    for d, e in pairs:
        h = int(hashlib.sha256(("de-en:" + d).encode()).hexdigest()[:8], 16)
        out["test" if h % 100 < test_pct else "train"].append((d, e))
    for split, rows in out.items():
        rows.sort()
        with open(os.path.join(outdir, split + ".jsonl"), "w", encoding="utf-8") as f:
            for d, e in rows:
                f.write(json.dumps({"text": d, "target_text": e}, ensure_ascii=False) + "\n")
    print("%d %d" % (len(out["train"]), len(out["test"])))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
