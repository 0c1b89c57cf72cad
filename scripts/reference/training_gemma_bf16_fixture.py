#!/usr/bin/env python3
"""PyTorch's own difference between a bf16 and a float32 training step, for the
trainer's reduced-precision test: the step of training_gemma_fixture.py (Gemma 3 270M,
LoRA r=16 on all seven projections, the same adapter and item) once in float32 and once
under torch.autocast("cpu", dtype=torch.bfloat16), as a QLoRA run computes. Same
packages as that script.

Writes Tests/TrainingTests/Fixtures/gemma_step_bf16.json: both losses, and per LoRA
tensor the relative difference ‖g_bf16 − g_f32‖ / ‖g_f32‖ of its gradient.

Usage from the repository root:
  python3 scripts/reference/training_gemma_bf16_fixture.py ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf
"""
import json
import sys

import torch

from tiny_models import root
from training_gemma_fixture import adapter_weights, item, load_base, step

model_path = sys.argv[1]
tokens, target = item(model_path)
base = load_base(model_path)
weights = adapter_weights(base.config)
loss32, exact = step(base, weights, tokens, target)
loss16, reduced = step(base, weights, tokens, target, autocast=torch.bfloat16)
differences = {n: ((reduced[n] - g).norm() / g.norm()).item() for n, g in sorted(exact.items())}
result = {"tokens": len(tokens), "lossFloat32": loss32, "lossBFloat16": loss16, "relativeDifferences": differences}
out = root / "Tests/TrainingTests/Fixtures/gemma_step_bf16.json"
out.write_text(json.dumps(result, indent=0) + "\n")
values = sorted(differences.values())
print(f"loss f32 {loss32:.6f}, bf16 {loss16:.6f}; gradients' relative difference: median {values[len(values) // 2]:.4f}, largest {values[-1]:.4f}")
print(f"wrote {out.relative_to(root)}")
