#!/usr/bin/env python3
"""openclipart-svg -> 64x64 PNG (white background, aspect kept, centred) + title text
(see openclipart.sh)."""
import csv, hashlib, os, re, struct, subprocess, sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

ROOT = "/usr/share/openclipart/svg"
EXCLUDE = {"unsorted", "special", "buttons", "logos"}  # no topic / < 10 drawings
NS = {"dc": "http://purl.org/dc/elements/1.1/", "cc": "http://creativecommons.org/ns#",
      "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "svg": "http://www.w3.org/2000/svg"}

def hkey(s):
    return hashlib.sha256(("openclipart:" + s).encode()).hexdigest()

def clean(s):
    s = re.sub(r"\s+", " ", (s or "").replace("_", " ")).strip()
    return s

GENERIC_KW = {"hash"}

def metadata(path):
    """-> (title, keywords, cleaned file name)."""
    name = clean(re.sub(r"_\d+$", "", os.path.basename(path)[:-4]).replace("-", " "))
    title, kws = "", []
    try:
        root = ET.parse(path).getroot()
        work = next((e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("}Work")), None)
        if work is not None:
            t = next((e for e in work if isinstance(e.tag, str) and e.tag.endswith("}title")), None)
            title = clean(t.text if t is not None else "")
            subj = [e for e in work if isinstance(e.tag, str) and e.tag.endswith("}subject")]
            kws = [clean(e.text) for s in subj for e in s.iter()
                   if isinstance(e.tag, str) and e.tag.endswith("}li") and e.text]
        if not title:
            t = root.find("svg:title", NS)
            title = clean(t.text if t is not None else "")
    except ET.ParseError:
        pass
    title = re.sub(r"^Clipart by Nicu Buculei - ", "", title)
    return title, kws, name

def describe(meta, title_count):
    """Text = title (or the file name when the title is missing or is a collection name
    shared by >= 5 drawings) + up to 5 keywords in parentheses."""
    title, kws, name = meta
    if not title or title_count.get(title, 0) >= 5 or title.lower() in ("untitled", "open clip art library"):
        title = name
    seen, keep = {title.lower()}, []
    for k in kws:
        if k and k.lower() not in seen and k.lower() not in GENERIC_KW and len(keep) < 5:
            seen.add(k.lower()); keep.append(k)
    return title + (" (" + ", ".join(keep) + ")" if keep else "")

def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">II", head[16:24])

def render(src, dst, size):
    """Two passes: fit into size x size, then centre on a white size x size page."""
    try:
        subprocess.run(["rsvg-convert", "-a", "-w", str(size), "-h", str(size), "-b", "white",
                        src, "-o", dst], check=True, timeout=20,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        w, h = png_size(dst)
        if (w, h) != (size, size):
            subprocess.run(["rsvg-convert", "-w", str(w), "-h", str(h), "--page-width", str(size),
                            "--page-height", str(size), "--left", str((size - w) // 2),
                            "--top", str((size - h) // 2), "-b", "white", src, "-o", dst],
                           check=True, timeout=20, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if png_size(dst) != (size, size):
            return "size"
        if os.path.getsize(dst) < 200:   # a blank white page compresses to ~100 bytes
            return "blank"
        return "ok"
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, struct.error):
        return "error"

def main(outdir, size, cap, test_every):
    files = []
    for d, _, fs in os.walk(ROOT):
        files += [os.path.join(d, f) for f in fs if f.endswith(".svg")]
    files.sort()
    seen, by_class = set(), {}
    dups = 0
    for p in files:
        c = os.path.relpath(p, ROOT).split(os.sep)[0]
        with open(p, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest in seen:
            dups += 1
            continue
        seen.add(digest)
        if c not in EXCLUDE:
            by_class.setdefault(c, []).append(p)
    labels = sorted(by_class)
    metas = {p: metadata(p) for c in labels for p in by_class[c]}
    title_count = {}
    for t, _, _ in metas.values():
        title_count[t] = title_count.get(t, 0) + 1
    os.makedirs(os.path.join(outdir, "images"), exist_ok=True)
    todo = []
    for c in labels:
        cand = sorted(by_class[c], key=lambda p: hkey(os.path.relpath(p, ROOT)))
        todo += [(c, p) for p in cand[:int(cap * 1.15) + 5]]
    def job(cp):
        c, p = cp
        rel = os.path.join("images", c, hkey(os.path.relpath(p, ROOT))[:16] + ".png")
        os.makedirs(os.path.join(outdir, "images", c), exist_ok=True)
        return rel, render(p, os.path.join(outdir, rel), size)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        results = list(ex.map(job, todo))
    rows = {"train": [], "test": []}
    stats = {c: {"ok": 0, "error": 0, "blank": 0, "size": 0, "train": 0, "test": 0} for c in labels}
    for (c, p), (rel, status) in zip(todo, results):
        st = stats[c]
        if st["ok"] >= cap:
            os.remove(os.path.join(outdir, rel))
            continue
        st[status] += 1
        if status != "ok":
            if os.path.exists(os.path.join(outdir, rel)):
                os.remove(os.path.join(outdir, rel))
            continue
        relsrc = os.path.relpath(p, ROOT)
        # drawings are in hash order: every test_every-th rendered one -> test (>= 1 per class)
        split = "test" if (st["ok"] - 1) % test_every == 0 else "train"
        st[split] += 1
        rows[split].append((rel, c, describe(metas[p], title_count), relsrc))
    for split, rs in rows.items():
        rs.sort()
        with open(os.path.join(outdir, split + ".csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["file", "label", "text"])
            for rel, c, text, _ in rs:
                w.writerow([rel, c, text])
        with open(os.path.join(outdir, split + "_sources.tsv"), "w", encoding="utf-8") as f:
            for rel, c, _, src in rs:
                f.write("%s\t%s\n" % (rel, src))
    with open(os.path.join(outdir, "counts.tsv"), "w") as f:
        f.write("label\tunique_svgs\trendered\tfailed\tblank\ttrain\ttest\n")
        tot = [0] * 6
        for c in labels:
            s = stats[c]
            v = [len(by_class[c]), s["ok"], s["error"] + s["size"], s["blank"], s["train"], s["test"]]
            tot = [a + b for a, b in zip(tot, v)]
            f.write(c + "\t" + "\t".join(map(str, v)) + "\n")
        f.write("TOTAL\t" + "\t".join(map(str, tot)) + "\n")
        f.write("# duplicate SVG files (same bytes under two folders) skipped: %d\n" % dups)
    print("%d %d %s" % (len(rows["train"]), len(rows["test"]), ",".join(labels)))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
