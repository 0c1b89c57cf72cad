#!/usr/bin/env python3
"""PEFT LoRA adapters on the tiny random models of tiny_models.py, and the logits
transformers + PEFT give with them, in float32 (pip install torch transformers peft
gguf accelerate safetensors).

For each family: random A and B (PEFT's init_lora_weights=False, seeded), saved by
PEFT's save_pretrained; the tensors are then stored in the dtype named below (F32, F16
or BF16, as training in half precision saves them) and the adapter is loaded back with
PeftModel.from_pretrained, so the logits are those of the stored values. The llama
adapter covers q and k, whose rows llama.cpp's converter permutes for its RoPE layout.

Writes Tests/EngineTests/Fixtures/adapters/tiny-ARCH/ (the adapter folder) and
Tests/EngineTests/Fixtures/tiny_adapters.json (settings and last-position logits).

Regenerate from the repository root:   python3 scripts/reference/lora_fixtures.py
"""
import json
import pathlib
import tempfile

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from tiny_models import FAMILIES, last_logits, load, root, write_gguf

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS = {
    "llama": dict(r=4, lora_alpha=8, target_modules=ALL, use_rslora=False, dtype=torch.float32),
    "qwen2": dict(r=4, lora_alpha=16, target_modules=ALL, use_rslora=False, dtype=torch.float16),
    "gemma2": dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=False, dtype=torch.bfloat16),
    "gemma3": dict(r=2, lora_alpha=8, target_modules=ALL, use_rslora=True, dtype=torch.float32),
}
fixtures = root / "Tests/EngineTests/Fixtures"
result = {"models": []}
with tempfile.TemporaryDirectory() as folder:
    for spec in FAMILIES:
        arch = spec["architecture"]
        settings = ADAPTERS[arch]
        name = f"tiny-{arch}.gguf"
        write_gguf(spec, f"{folder}/{name}")
        torch.manual_seed(7)
        config = LoraConfig(r=settings["r"], lora_alpha=settings["lora_alpha"], target_modules=settings["target_modules"],
                            use_rslora=settings["use_rslora"], lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM")
        peft_model = get_peft_model(load(folder, name), config)
        adapter = fixtures / f"adapters/tiny-{arch}"
        peft_model.save_pretrained(adapter)
        # The base as the user would name it, not this script's temporary folder.
        config_file = adapter / "adapter_config.json"
        config_file.write_text(config_file.read_text().replace(folder, name.removesuffix(".gguf")))
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
out = fixtures / "tiny_adapters.json"
out.write_text(json.dumps(result) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
