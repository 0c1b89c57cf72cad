#!/usr/bin/env python3
"""Reference dequantisation by the `gguf` package (pip install gguf==0.19.0).

Writes Tests/GGUFTests/Fixtures/dequant_reference.json:
- "random": for every supported type, a few random blocks (seeded; scales kept finite)
  and gguf.quants.dequantize's float32 output, both base64;
- "models": for every tensor of the two default models, the first two blocks and two
  blocks from the middle: their index, the sha256 of gguf's float32 output (little
  endian) and its first values, for the Swift test to compare bit for bit.

Regenerate from the repository root, with the models fetched (make models):
    python3 scripts/reference/dequant_fixtures.py
"""
import base64
import hashlib
import json
import os
import pathlib

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf.quants import dequantize

root = pathlib.Path(__file__).resolve().parents[2]
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
out = root / "Tests/GGUFTests/Fixtures/dequant_reference.json"

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]
# Byte offsets of the f16 scale fields in each block, kept finite in random blocks.
HALF_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
               T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}

rng = np.random.default_rng(20261124)
random_cases = {}
for qtype in TYPES:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = 4 if block_size > 1 else 256
    raw = rng.integers(0, 256, size=(blocks, type_size), dtype=np.uint8)
    for offset in HALF_FIELDS.get(qtype, []):
        raw[:, offset:offset + 2] = rng.uniform(-2, 2, size=(blocks, 1)).astype(np.float16).view(np.uint8)
    if qtype == T.F32:
        raw = rng.normal(size=blocks).astype(np.float32).view(np.uint8).reshape(blocks, 4)
    elif qtype == T.F16:
        raw = rng.normal(size=blocks).astype(np.float16).view(np.uint8).reshape(blocks, 2)
    elif qtype == T.BF16:
        raw = (rng.normal(size=blocks).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(blocks, 2)
    values = dequantize(raw.reshape(1, -1), qtype).astype("<f4")
    random_cases[qtype.name] = {"blocks": base64.b64encode(raw.tobytes()).decode(), "expected": base64.b64encode(values.tobytes()).decode()}

model_cases = {}
for file in ["gemma-3-270m-q4_k_m.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"]:
    reader = GGUFReader(models / file)
    tensors = {}
    for tensor in reader.tensors:
        qtype = T(tensor.tensor_type)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        raw = np.asarray(tensor.data).reshape(-1).view(np.uint8)
        count = raw.size // type_size
        ranges = []
        for first in sorted({0, max(0, count // 2 - 1)}):
            n = min(2, count - first)
            piece = raw[first * type_size:(first + n) * type_size].reshape(1, -1)
            values = dequantize(piece, qtype).astype("<f4").reshape(-1)
            ranges.append({"first": first, "blocks": n, "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
                           "head": [float(v) for v in values[:4]]})
        tensors[tensor.name] = {"type": qtype.name, "ranges": ranges}
    model_cases[file] = tensors
    print(f"{file}: {len(tensors)} tensors")

out.write_text(json.dumps({"random": random_cases, "models": model_cases}, sort_keys=True, separators=(",", ":")) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
