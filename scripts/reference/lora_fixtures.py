#!/usr/bin/env python3
"""PEFT LoRA adapters on the tiny random models of tiny_models.py, and the logits
transformers + PEFT give with them, in float32 (pip install torch transformers peft
gguf accelerate safetensors).

For each family: random A and B (PEFT's init_lora_weights=False, seeded), saved by
PEFT's save_pretrained; the tensors are then stored in the dtype named below (F32, F16
or BF16, as training in half precision saves them) and the adapter is loaded back with
PeftModel.from_pretrained, so the logits are those of the stored values. The llama
adapter covers q and k, whose rows llama.cpp's converter permutes for its RoPE layout
(exaone, exaone4 and qwen3 use NEOX RoPE: no permutation). exaone is EXAONE 3.x as
transformers runs it natively (ExaoneConfig → LlamaForCausalLM, Llama's module names
q_proj … down_proj); exaone4 has 64 layers (see tiny_models.py), so its adapter has 64
layers' tensors.

Writes Tests/EngineTests/Fixtures/adapters/tiny-ARCH/ (the adapter folder) and
Tests/EngineTests/Fixtures/tiny_adapters.json (settings and last-position logits).

Regenerate from the repository root:   python3 scripts/reference/lora_fixtures.py [ARCH ...]
With architectures named, only their adapter folders and entries are rewritten; the other
entries of the JSON are kept as committed (the families exaone, exaone4 and qwen3 were
added so: python3 scripts/reference/lora_fixtures.py exaone exaone4 qwen3).

Versions used: Python 3.11.7, torch 2.15.0 (CPU), transformers 5.24.0, peft 0.21.2,
accelerate 1.15.0, safetensors 0.8.0, gguf 0.19.0 (the four first families were made with
the same peft; their entries and folders are unchanged since).
"""
import json
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file

from tiny_models import FAMILIES, last_logits, load, root, save_random_adapter

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS = {
    "llama": dict(r=4, lora_alpha=8, target_modules=ALL, use_rslora=False, dtype=torch.float32),
    "qwen2": dict(r=4, lora_alpha=16, target_modules=ALL, use_rslora=False, dtype=torch.float16),
    "gemma2": dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=False, dtype=torch.bfloat16),
    "gemma3": dict(r=2, lora_alpha=8, target_modules=ALL, use_rslora=True, dtype=torch.float32),
    "exaone": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=False, dtype=torch.float32),
    "exaone4": dict(r=2, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "gate_proj"], use_rslora=True,
                    dtype=torch.bfloat16),
    "qwen3": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=False, dtype=torch.float16),
}
fixtures = root / "Tests/EngineTests/Fixtures"
out = fixtures / "tiny_adapters.json"
chosen = sys.argv[1:] or [spec["architecture"] for spec in FAMILIES]
kept = {m["architecture"]: m for m in json.loads(out.read_text())["models"]} if sys.argv[1:] else {}
result = {"models": []}
with tempfile.TemporaryDirectory() as folder:
    for spec in FAMILIES:
        arch = spec["architecture"]
        if arch not in chosen:
            if arch in kept:
                result["models"].append(kept[arch])
            continue
        settings = ADAPTERS[arch]
        adapter = fixtures / f"adapters/tiny-{arch}"
        name = save_random_adapter(folder, spec, settings, adapter, seed=7)
        weights = adapter / "adapter_model.safetensors"
        tensors = {k: v.to(settings["dtype"]).contiguous() for k, v in load_file(weights).items()}
        save_file(tensors, weights, metadata={"format": "pt"})
        reloaded = PeftModel.from_pretrained(load(folder, name), adapter)
        reloaded.eval()
        logits = last_logits(reloaded)
        base = last_logits(load(folder, name))
        change = max(abs(a - b) for a, b in zip(logits, base))
        result["models"].append({"architecture": arch, "adapter": f"adapters/tiny-{arch}", "logits": logits})
        print(f"{arch}: {len(tensors)} tensors, {str(settings['dtype'])}, largest change of a logit by the adapter {change:.3f}")
out.write_text(json.dumps(result) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
