#!/usr/bin/env python3
"""Spoken digits 'zero'..'nine': synthetic TRAIN (espeak-ng + flite), REAL TEST
(Asterisk's recorded prompts, voice 'Allison'). See keyword_spotting.sh."""
import multiprocessing, os, random, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audio_util as au

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SR, N = 16000, 16000  # 1 s at 16 kHz
ESPEAK_ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]   # awb_time is a limited-domain clock voice
ASTERISK_DIGITS = "/usr/share/asterisk/sounds/en_US_f_Allison/digits"

def jobs(per_voice):
    out = []
    for acc in ESPEAK_ACCENTS:
        for var in ESPEAK_VARIANTS:
            voice = acc + ("+" + var if var else "")
            rng = random.Random("espeak:" + voice)
            for k in range(per_voice):
                speed, pitch = rng.randint(110, 210), rng.randint(20, 80)
                for w in WORDS:
                    name = "espeak_%s_%s_s%d_p%d" % (acc, var or "default", speed, pitch)
                    out.append((w, name, ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch)]))
    for v in FLITE_VOICES:
        for stretch in ("0.8", "1.0", "1.3"):
            for f0 in ("90", "120", "170"):
                for w in WORDS:
                    name = "flite_%s_d%s_f%s" % (v, stretch, f0)
                    out.append((w, name, ["flite", "-voice", v, "--setf", "duration_stretch=" + stretch,
                                          "--setf", "int_f0_target_mean=" + f0]))
    return out

def synth(tmp, job):
    w, name, cmd = job
    path = os.path.join(tmp, "%s__%s.wav" % (w, name))
    if cmd[0] == "espeak-ng":
        cmd = cmd + ["-w", path, w]
    else:
        cmd = cmd + ["-t", w, "-o", path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path

def to_clip(x, sr, offset_rng, telephone):
    x = au.resample(x, sr, SR)
    if telephone:  # band-limit like the 8 kHz test recordings
        x = au.resample(au.resample(x, SR, 8000), 8000, SR)
    x = au.trim_silence(x, SR)
    p = au.peak(x)
    if p == 0:
        return None
    gain = 0.7 / p if offset_rng is None else offset_rng.uniform(0.3, 0.9) / p
    x = au.scale(x, gain)
    slack = max(0, N - len(x))
    off = slack // 2 if offset_rng is None else offset_rng.randint(0, slack)
    return au.place(x, N, off)

def make_train_clip(args):
    """One synthetic clip, end to end (runs in a worker process; seeded by its name)."""
    (w, name, cmd), tmp, raw, telephone = args
    path = synth(tmp, (w, name, cmd))
    x, sr = au.read_mono(path)
    os.remove(path)
    clip = to_clip(x, sr, random.Random("place:" + w + ":" + name), telephone)
    if clip is None:
        return None
    rel = os.path.join("train", w, name + ".wav")
    au.write_wav16(os.path.join(raw, rel), clip, SR)
    return rel, w

def main(outdir, per_voice, telephone):
    raw = outdir
    rows = {"train": [], "test": []}
    # ---- train: synthetic
    js = jobs(per_voice)
    for w in WORDS:
        os.makedirs(os.path.join(raw, "train", w), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, multiprocessing.Pool(os.cpu_count() or 2) as pool:
        for j, res in zip(js, pool.imap(make_train_clip, [(j, tmp, raw, telephone) for j in js], chunksize=8)):
            if res is None:
                print("skip silent %s %s" % (j[0], j[1]), file=sys.stderr)
            else:
                rows["train"].append(res)
    # ---- test: real recordings, never synthetic
    for d, w in enumerate(WORDS):
        src = os.path.join(ASTERISK_DIGITS, "%d.wav" % d)
        x, sr = au.read_mono(src)
        clip = to_clip(x, sr, None, False)
        rel = os.path.join("test", w, "asterisk_allison_%d.wav" % d)
        os.makedirs(os.path.join(raw, "test", w), exist_ok=True)
        au.write_wav16(os.path.join(raw, rel), clip, SR)
        rows["test"].append((rel, w))
    for split, rs in rows.items():
        rs.sort()
        with open(os.path.join(raw, split + ".csv"), "w") as f:
            f.write("file,label\n")
            for rel, w in rs:
                f.write("%s,%s\n" % (rel, w))
    print("%d %d %s" % (len(rows["train"]), len(rows["test"]), ",".join(WORDS)))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1")
