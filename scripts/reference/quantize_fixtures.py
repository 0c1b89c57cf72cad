#!/usr/bin/env python3
"""Reference quantisation by the `gguf` package (gguf.quants.quantize, gguf 0.19.0), for
our own quantiser (the one `suneung model merge --type` uses) to match bit for bit.

Writes Tests/GGUFTests/Fixtures/quantize.json: {"generator": ..., "cases": [...]}, each case
  {"name", "type" (Q8_0, Q4_0, F16 or BF16), "shape" ([rows, columns]),
   "lcg": {"seed", "scale", "offset", "count"} and/or "values" (explicit float32 values),
   "overrides" ([[index, value], ...] written over the LCG values),
   "sha256" (of the quantised bytes), "bytes" (their count), "head" (first 64 bytes, hex),
   "dequant_sha256" (of gguf.quants.dequantize's float32 output, little endian),
   "max_error" (largest |dequantize(quantize(x)) − x|, over finite results)}.

Input values: the 32-bit LCG of tiny_models.py, x = (1664525·x + 1013904223) mod 2^32, then
w = offset + scale·(2·x/2^32 − 1) computed in float64 (Python floats) and rounded once to
float32; the first value uses the first step from the seed (x is advanced before use).
Explicit values and overrides are float32 numbers written exactly as JSON doubles.
The quantiser sees a row-major [rows, columns] float32 array (blocks of 32 along a row).

The script checks that dequantize(quantize(x)) is close to x (within half a step of each
block's scale for Q8_0/Q4_0, within half an ulp for F16/BF16), and, when llama-cpp-python's
libggml-base.so is found, that ggml's own ggml_quantize_chunk (Q8_0, Q4_0, F16, BF16; what
llama-quantize calls, no importance matrix) gives the same bytes; both results are printed.

Versions used: Python 3.11.7, numpy 2.4.6, gguf 0.19.0, llama-cpp-python 0.3.36 (its ggml).
Regenerate from the repository root:   python3 scripts/reference/quantize_fixtures.py
"""
import ctypes
import hashlib
import json
import pathlib

import numpy as np

from generator import lcg
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Tests/GGUFTests/Fixtures/quantize.json"




def f32(values):
    return np.array(values, dtype=np.float32)


# (name, types, shape, lcg recipe or None, overrides, explicit values or None)
SPECS = []
ALL = ["Q8_0", "Q4_0", "F16", "BF16"]
Q = ["Q8_0", "Q4_0"]
SPECS += [("lcg-block", ALL, [1, 32], dict(seed=1, scale=1.0, offset=0.0, count=32), [], None),
          ("lcg-row64", ALL, [1, 64], dict(seed=2, scale=0.05, offset=0.0, count=64), [], None),
          ("lcg-rows4096", ALL, [3, 4096], dict(seed=3, scale=0.02, offset=0.001, count=3 * 4096), [], None),
          ("lcg-2x64", ALL, [2, 64], dict(seed=4, scale=3.0, offset=0.0, count=128), [], None),
          ("negative-dominant", ALL, [2, 64], dict(seed=5, scale=0.3, offset=-0.5, count=128), [], None),
          ("positive-dominant", ALL, [1, 64], dict(seed=6, scale=0.3, offset=0.5, count=64), [], None),
          ("all-zero", ALL, [1, 64], None, [], [0.0] * 32 + [0.0] * 16 + [-0.0] * 16),
          ("one-huge", ALL, [1, 64], dict(seed=7, scale=0.01, offset=0.0, count=64), [[5, 1000.0], [40, -1000.0]], None),
          ("one-huge-f16-overflow", ["F16", "BF16"], [1, 32], dict(seed=8, scale=1.0, offset=0.0, count=32),
           [[3, 70000.0], [4, -1e6], [5, 65519.0], [6, 65520.0]], None),
          ("tiny-values", ALL, [1, 32], dict(seed=9, scale=1e-6, offset=0.0, count=32), [[0, 2.0 ** -25], [1, 3 * 2.0 ** -25]], None),
          # Q8_0: amax 127 → d = 1, id = 1: x·id = k + ½ exactly; roundf rounds half away from zero.
          ("q8-halves", Q + ["F16", "BF16"], [1, 32], None, [],
           [127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 3.5, -3.5, 0.49999997, -0.49999997, 64.5, -64.5, 0.0]
           + [float(k) + 0.5 for k in range(-8, 8)]),
          # Q4_0: max −8 → d = 1, q = trunc(x + 8.5): halves round up (towards +∞), 7.5 clips to 15.
          ("q4-halves", Q + ["F16", "BF16"], [1, 32], None, [],
           [-8.0, -7.5, -6.5, -0.5, 0.5, 1.5, 6.5, 7.5, 7.4, -7.4, 0.0, -0.0, 2.5, -2.5, 3.5, -3.5]
           + [float(k) / 2 for k in range(-8, 8)]),
          # Q4_0 with a positive max: d = −max/8 < 0, so −max comes back as −7/8·max (clipped at 15).
          ("q4-positive-max", Q, [1, 32], None, [], [8.0, -8.0, -7.0, 7.0, 4.0, -4.0, 0.5, -0.5] * 4),
          # Ties of |x|: the first of the largest magnitudes gives the sign of Q4_0's d.
          ("abs-ties", Q, [1, 64], None, [], [0.25, -1.0, 1.0, 0.5] * 8 + [0.25, 1.0, -1.0, -0.5] * 8),
          # F16/BF16 round to nearest, ties to even.
          ("f16-halves", ["F16", "BF16"], [1, 32], None, [],
           [1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, -(1 + 2.0 ** -11), 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, -(1 + 3 * 2.0 ** -8),
            2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -24, 65504.0, 65519.0, 65520.0, 2.0 ** -14, 2.0 ** -126, 1e-40, -1e-40]
           + [float(k) * 0.1 for k in range(16)]),
          ]


def values_of(lcg_spec, overrides, explicit):
    x = lcg(**lcg_spec) if lcg_spec else f32(explicit)
    for index, value in overrides:
        x[index] = np.float32(value)
    return x


def ggml_library():
    try:
        import llama_cpp
        lib = ctypes.CDLL(str(pathlib.Path(llama_cpp.__file__).parent / "lib/libggml-base.so"))
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                            ctypes.c_int64, ctypes.c_void_p]
        return lib
    except (ImportError, OSError, AttributeError):
        return None


def ggml_quantize(lib, qtype, x):
    rows, columns = x.shape
    block, size = GGML_QUANT_SIZES[qtype]
    dst = np.zeros(rows * columns // block * size, dtype=np.uint8)
    src = np.ascontiguousarray(x, dtype=np.float32)
    lib.ggml_quantize_chunk(int(qtype), src.ctypes.data, dst.ctypes.data, 0, rows, columns, None)
    return dst.tobytes()


lib = ggml_library()
cases, disagreements = [], []
for name, types, shape, lcg_spec, overrides, explicit in SPECS:
    x = values_of(lcg_spec, overrides, explicit).reshape(shape)
    for type_name in types:
        qtype = T[type_name]
        with np.errstate(over="ignore"):
            q = quantize(x, qtype)
        raw = np.ascontiguousarray(q).view(np.uint8).tobytes()
        back = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(shape[0], -1), qtype).astype("<f4").reshape(shape)
        finite = np.isfinite(back)
        error = float(np.max(np.abs(back[finite] - x[finite]))) if finite.any() else 0.0
        # Round-trip check: a step of Q8_0 is amax/127, of Q4_0 |max|/8 (plus the f16 rounding of d).
        blocks_x, blocks_b = x.reshape(-1, 32), back.reshape(-1, 32)
        for bx, bb in zip(blocks_x, blocks_b):
            amax = float(np.abs(bx).max())
            if type_name == "Q8_0":
                limit = amax / 127 * 0.5 + amax * 2e-3 + 127 * 2.0 ** -24  # d may be an f16 subnormal
            elif type_name == "Q4_0":
                limit = amax / 8 * 1.0 + amax * 2e-3 + 8 * 2.0 ** -24  # clipping at 15 costs up to one step for the positive max side
            else:
                limit = np.abs(bx) * (2.0 ** -11 if type_name == "F16" else 2.0 ** -8) + 2.0 ** -24
            ok = np.isfinite(bb) | (np.abs(bx) > 65504)
            assert np.all(ok), (name, type_name)
            assert np.all((np.abs(bb - bx) <= limit)[np.isfinite(bb)]), (name, type_name, np.abs(bb - bx).max())
        case = {"name": name, "type": type_name, "shape": shape}
        if lcg_spec:
            case["lcg"] = lcg_spec
        if explicit is not None:
            case["values"] = [float(v) for v in f32(explicit)]
        if overrides:
            case["overrides"] = [[i, float(np.float32(v))] for i, v in overrides]
        case.update({"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw), "head": raw[:64].hex(),
                     "dequant_sha256": hashlib.sha256(back.tobytes()).hexdigest(), "max_error": error})
        if lib is not None:
            theirs = ggml_quantize(lib, qtype, x)
            case_agrees = theirs == raw
            if not case_agrees:
                disagreements.append(f"{name}/{type_name}")
        cases.append(case)
        print(f"{name:24} {type_name:5} {len(raw):6} bytes  max |dq(q(x)) − x| {error:.3g}")

print("ggml_quantize_chunk:", "not found" if lib is None else
      ("identical bytes in every case" if not disagreements else f"differs in {disagreements}"))
generator = ("x = (1664525*x + 1013904223) mod 2^32 (x advanced before each value, starting from seed); "
             "w = offset + scale*(2*x/2^32 - 1) in float64, rounded once to float32; then overrides [index, value]")
out.write_text(json.dumps({"generator": generator, "gguf": "0.19.0", "cases": cases}, indent=1) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes, {len(cases)} cases)")
