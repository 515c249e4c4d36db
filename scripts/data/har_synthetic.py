#!/usr/bin/env python3
"""SYNTHETIC inertial data for human activity recognition (see har_synthetic.sh).

NOT REAL SENSOR DATA. A seeded, physically motivated generator of a waist-worn 6-axis
IMU (accelerometer in m/s^2 including gravity, gyroscope in rad/s), 50 Hz.

Model per window, in the trunk frame (x forward, y left, z up):
  gravity   : the accelerometer reads +9.81 m/s^2 "up"; posture tilts the trunk (pitch
              about y, roll about x) so gravity leaks into x/y (sitting leans back,
              cycling and stair climbing lean forward).
  motion    : periodic components at the activity's cadence f (steps/s or pedal rev/s):
              vertical at f (+ harmonics; heel-strike impacts for running), forward at f
              with a phase lag, lateral and yaw at f/2 (left/right stride), pitch/roll
              angular rates at f; amplitudes and cadence drawn per subject and per window,
              cadence drifts a few percent within the window, per-step amplitude jitter.
  still     : standing / sitting have postural sway (0.1-0.5 Hz, small) only.
  device    : the unit sits on the belt with a per-subject mounting rotation (up to
              +-20 deg yaw, +-10 deg pitch/roll) and per-subject accelerometer/gyro
              biases; white sensor noise; cycling adds road vibration (8-20 Hz).
Subjects: 30 synthetic subjects, 1..24 -> train, 25..30 -> test (subject-disjoint).
"""
import math, os, random, sys

CLASSES = ["walking", "running", "sitting", "standing", "climbing_stairs", "cycling"]
HZ, T, G = 50, 100, 9.81

def rot(yaw, pitch, roll):
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    # R = Rz(yaw) Ry(pitch) Rx(roll)
    return [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr]]

def apply_t(R, v):  # R^T v : world/trunk vector expressed in the rotated frame
    return [R[0][i] * v[0] + R[1][i] * v[1] + R[2][i] * v[2] for i in range(3)]

# activity -> (cadence Hz range, vertical amp, forward amp, lateral amp, gyro pitch amp,
#              gyro yaw amp, trunk pitch deg range (+ = lean forward))
PARAMS = {
    "walking":         ((1.6, 2.1), (2.0, 4.0), (1.0, 2.2), (0.5, 1.2), (0.3, 0.6), (0.2, 0.5), (-3, 6)),
    "running":         ((2.5, 3.2), (8.0, 14.0), (3.0, 6.0), (1.5, 3.0), (1.0, 2.0), (0.6, 1.2), (5, 15)),
    "climbing_stairs": ((1.2, 1.7), (2.5, 5.0), (0.8, 1.8), (0.6, 1.4), (0.4, 0.9), (0.2, 0.5), (8, 20)),
    "cycling":         ((1.0, 1.6), (0.3, 1.0), (0.2, 0.6), (0.5, 1.0), (0.1, 0.3), (0.2, 0.5), (20, 45)),
    "sitting":         (None, None, None, None, None, None, (-35, -12)),
    "standing":        (None, None, None, None, None, None, (-4, 6)),
}

def subject(sid):
    r = random.Random("har-subject:%d" % sid)
    return {
        "mount": rot(math.radians(r.uniform(-20, 20)), math.radians(r.uniform(-10, 10)),
                     math.radians(r.uniform(-10, 10))),
        "abias": [r.gauss(0, 0.08) for _ in range(3)],
        "gbias": [r.gauss(0, 0.01) for _ in range(3)],
        "cad": r.uniform(-0.5, 0.5),     # where in each cadence range this person sits
        "amp": r.uniform(0.8, 1.2),      # how vigorous this person moves
        "anoise": r.uniform(0.02, 0.06), "gnoise": r.uniform(0.004, 0.012),
    }

def window(cls, subj, r):
    cad_rng, av, af, al, gp, gy, tilt = PARAMS[cls]
    pitch = math.radians(r.uniform(*tilt))
    roll = math.radians(r.gauss(0, 3))
    posture = rot(0.0, pitch, roll)
    grav = apply_t(posture, [0.0, 0.0, G])   # specific force of gravity in the trunk frame
    out = []
    if cad_rng is not None:
        lo, hi = cad_rng
        f0 = (lo + hi) / 2 + subj["cad"] * (hi - lo) / 2 + r.uniform(-0.1, 0.1) * (hi - lo)
        drift = r.uniform(-0.03, 0.03)
        k = subj["amp"] * r.uniform(0.85, 1.15)
        A = [k * r.uniform(*av), k * r.uniform(*af), k * r.uniform(*al), k * r.uniform(*gp), k * r.uniform(*gy)]
        ph, lag = r.uniform(0, 2 * math.pi), r.uniform(0.6, 1.2)
        jitter = [r.uniform(0.85, 1.15) for _ in range(16)]
    else:
        sway_f = [r.uniform(0.1, 0.5) for _ in range(3)]
        sway_a = [r.uniform(0.02, 0.08) * (1.5 if cls == "standing" else 1.0) for _ in range(3)]
        sway_p = [r.uniform(0, 2 * math.pi) for _ in range(3)]
    vib = [r.uniform(8, 20) for _ in range(3)] if cls == "cycling" else None
    theta = 0.0
    for n in range(T):
        t = n / HZ
        acc, gyr = list(grav), [0.0, 0.0, 0.0]
        if cad_rng is not None:
            f = f0 * (1 + drift * t / (T / HZ))
            theta += 2 * math.pi * f / HZ
            th = theta + ph
            step = jitter[int((th / (2 * math.pi)) % 16)]
            if cls == "running":   # sharp heel-strike: rectified, peaky vertical profile
                s = max(0.0, math.sin(th)) ** 3 * 2.2 - 0.45
                vert = A[0] * step * (s + 0.15 * math.sin(2 * th))
            elif cls == "cycling":  # two pedal strokes per revolution
                vert = A[0] * step * math.sin(2 * th)
            else:
                vert = A[0] * step * (math.sin(th) + 0.35 * math.sin(2 * th + 0.5))
            if cls == "climbing_stairs":   # alternate legs lift the body unevenly
                vert *= 1.0 + 0.25 * math.sin(th / 2)
            acc[2] += vert
            acc[0] += A[1] * step * math.sin(th - lag)
            acc[1] += A[2] * math.sin(th / 2 + 0.3)
            gyr[1] += A[3] * step * math.cos(th - lag)
            gyr[2] += A[4] * math.sin(th / 2)
            gyr[0] += 0.4 * A[3] * math.sin(th / 2 + 1.0)
        else:
            for i in range(3):
                s = math.sin(2 * math.pi * sway_f[i] * t + sway_p[i])
                acc[i] += sway_a[i] * s
                gyr[i] += sway_a[i] * 0.3 * math.cos(2 * math.pi * sway_f[i] * t + sway_p[i])
        if vib is not None:
            for i in range(3):
                acc[i] += 0.4 * math.sin(2 * math.pi * vib[i] * t + i) + r.gauss(0, 0.3)
        a = apply_t(subj["mount"], acc)
        g = apply_t(subj["mount"], gyr)
        a = [a[i] + subj["abias"][i] + r.gauss(0, subj["anoise"]) for i in range(3)]
        g = [g[i] + subj["gbias"][i] + r.gauss(0, subj["gnoise"]) for i in range(3)]
        out.append(a + g)
    return out

def main(outdir, per_subject_class):
    counts = {}
    for split, sids in (("train", range(1, 25)), ("test", range(25, 31))):
        wid = 0
        with open(os.path.join(outdir, split + ".csv"), "w") as f:
            f.write("window,label,ax,ay,az,gx,gy,gz\n")
            for sid in sids:
                subj = subject(sid)
                for cls in CLASSES:
                    for k in range(per_subject_class):
                        r = random.Random("har-window:%d:%s:%d" % (sid, cls, k))
                        for row in window(cls, subj, r):
                            f.write("%d,%s,%s\n" % (wid, cls, ",".join("%.4f" % v for v in row)))
                        wid += 1
                        counts[(split, cls)] = counts.get((split, cls), 0) + 1
    n_tr = sum(v for (s, _), v in counts.items() if s == "train")
    n_te = sum(v for (s, _), v in counts.items() if s == "test")
    print("%d %d %s" % (n_tr, n_te, ",".join(CLASSES)))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
