#!/usr/bin/env python3
"""WordNet 3.0 noun glosses -> topic-classification JSONL (see wordnet_topics.sh)."""
import hashlib, json, os, re, sys
from collections import defaultdict

LEXNAMES = ["noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
            "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
            "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
            "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
            "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance",
            "noun.time"]  # lex_filenum 03..28 (wndb(5WN) / lexnames(5WN))

def key(offset):  # deterministic pseudo-random order, independent of PYTHONHASHSEED
    return hashlib.sha256(("wn-noun:" + offset).encode()).hexdigest()

def main(src, outdir, cap_train, cap_test, test_pct):
    per = defaultdict(list)
    with open(src, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, lexnum = fields[0], int(fields[1])
            label = LEXNAMES[lexnum - 3]
            gloss = gloss.strip()
            # keep the definition, drop the quoted usage examples ("..."; "...")
            definition = re.split(r';\s*"', gloss, maxsplit=1)[0].strip().rstrip(';').strip()
            if len(definition.split()) < 2:
                continue
            per[label].append((key(offset), offset, definition))
    stats = {}
    rows = {"train": [], "test": []}
    for label in LEXNAMES:
        items = sorted(per[label])
        test = [x for x in items if int(x[0][:8], 16) % 100 < test_pct]
        train = [x for x in items if int(x[0][:8], 16) % 100 >= test_pct]
        test, train = test[:cap_test], train[:cap_train]
        stats[label] = (len(items), len(train), len(test))
        rows["train"] += [(x[1], x[2], label) for x in train]
        rows["test"] += [(x[1], x[2], label) for x in test]
    for split, rs in rows.items():
        rs.sort()  # by synset offset
        with open(os.path.join(outdir, split + ".jsonl"), "w", encoding="utf-8") as f:
            for off, text, label in rs:
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    with open(os.path.join(outdir, "counts.tsv"), "w") as f:
        f.write("label\tsynsets\ttrain\ttest\n")
        for label in LEXNAMES:
            f.write("%s\t%d\t%d\t%d\n" % ((label,) + stats[label]))
        f.write("TOTAL\t%d\t%d\t%d\n" % (sum(s[0] for s in stats.values()),
                                         len(rows["train"]), len(rows["test"])))
    print(",".join(LEXNAMES))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
