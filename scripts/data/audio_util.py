#!/usr/bin/env python3
"""Audio glue for the dataset scripts: python3 stdlib + ctypes bindings to Debian's
libsndfile1 (read WAV/FLAC/Ogg) and libsamplerate0 (band-limited resampling).
No numpy. Deterministic: libsamplerate's sinc converters are pure arithmetic."""
import array, ctypes, ctypes.util, math, operator, wave

_sf = ctypes.CDLL(ctypes.util.find_library("sndfile") or "libsndfile.so.1")
_src = ctypes.CDLL(ctypes.util.find_library("samplerate") or "libsamplerate.so.0")

class _SFInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]

class _SRCData(ctypes.Structure):
    _fields_ = [("data_in", ctypes.POINTER(ctypes.c_float)), ("data_out", ctypes.POINTER(ctypes.c_float)),
                ("input_frames", ctypes.c_long), ("output_frames", ctypes.c_long),
                ("input_frames_used", ctypes.c_long), ("output_frames_gen", ctypes.c_long),
                ("end_of_input", ctypes.c_int), ("src_ratio", ctypes.c_double)]

_sf.sf_open.restype = ctypes.c_void_p
_sf.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_SFInfo)]
_sf.sf_readf_float.restype = ctypes.c_int64
_sf.sf_readf_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64]
_sf.sf_close.argtypes = [ctypes.c_void_p]
_sf.sf_strerror.restype = ctypes.c_char_p
_sf.sf_strerror.argtypes = [ctypes.c_void_p]
_src.src_simple.argtypes = [ctypes.POINTER(_SRCData), ctypes.c_int, ctypes.c_int]
_src.src_strerror.restype = ctypes.c_char_p
SRC_SINC_MEDIUM_QUALITY = 1

def _ptr(a):
    return ctypes.cast((ctypes.c_float * len(a)).from_buffer(a), ctypes.POINTER(ctypes.c_float))

def read_mono(path, max_seconds=None):
    """-> (array('f') mono in [-1,1], sample_rate). Multichannel is averaged."""
    info = _SFInfo()
    h = _sf.sf_open(path.encode(), 0x10, ctypes.byref(info))
    if not h:
        raise IOError("%s: %s" % (path, _sf.sf_strerror(None).decode()))
    try:
        n = info.frames
        if max_seconds is not None:
            n = min(n, int(max_seconds * info.samplerate))
        ch = info.channels
        buf = array.array("f", bytes(4 * n * ch))
        got = _sf.sf_readf_float(h, _ptr(buf), n) if n > 0 else 0
    finally:
        _sf.sf_close(h)
    if ch == 1:
        return buf[:got], info.samplerate
    mono = array.array("f", (sum(buf[i * ch:(i + 1) * ch]) / ch for i in range(got)))
    return mono, info.samplerate

def resample(x, sr_in, sr_out):
    if sr_in == sr_out or len(x) == 0:
        return array.array("f", x)
    ratio = sr_out / sr_in
    out = array.array("f", bytes(4 * (int(len(x) * ratio) + 64)))
    xin = array.array("f", x)
    d = _SRCData(_ptr(xin), _ptr(out), len(xin), len(out), 0, 0, 1, ratio)
    err = _src.src_simple(ctypes.byref(d), SRC_SINC_MEDIUM_QUALITY, 1)
    if err:
        raise RuntimeError("libsamplerate: " + _src.src_strerror(err).decode())
    return out[:d.output_frames_gen]

def peak(x):
    return max(max(x), -min(x)) if len(x) else 0.0

def rms(x):
    return math.sqrt(math.fsum(map(operator.mul, x, x)) / len(x)) if len(x) else 0.0

def trim_silence(x, sr, rel_db=-35.0, frame_ms=10):
    """Drop leading/trailing frames whose RMS is rel_db below the loudest frame."""
    f = max(1, sr * frame_ms // 1000)
    frames = [rms(x[i:i + f]) for i in range(0, len(x), f)]
    if not frames or max(frames) == 0:
        return array.array("f")
    thr = max(frames) * 10 ** (rel_db / 20)
    on = [i for i, r in enumerate(frames) if r >= thr]
    return x[on[0] * f:(on[-1] + 1) * f]

def scale(x, gain):
    return array.array("f", map(float(gain).__mul__, x))

def place(x, n, offset):
    """Return exactly n samples: x (truncated if longer) starting at offset, zero padded."""
    x = x[:n]
    offset = max(0, min(offset, n - len(x)))
    out = array.array("f", bytes(4 * n))
    out[offset:offset + len(x)] = x
    return out

def write_wav16(path, x, sr):
    if peak(x) <= 1.0:   # fast path (C-level map); int() truncates toward zero
        pcm = array.array("h", map(int, map((32767.0).__mul__, x)))
    else:
        pcm = array.array("h", (max(-32767, min(32767, int(v * 32767))) for v in x))
    if pcm.itemsize != 2:
        raise RuntimeError("array('h') is not 16-bit here")
    import sys
    if sys.byteorder == "big":
        pcm.byteswap()
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
