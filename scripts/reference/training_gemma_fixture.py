#!/usr/bin/env python3
"""One training step of PyTorch + PEFT on Gemma 3 270M (the default GGUF, dequantised
to float32 by transformers) for the trainer's parity test (pip install torch
transformers peft gguf accelerate safetensors llama-cpp-python).

The adapter: LoRA r=16, alpha=32 on all seven projections, A and B filled by the
32-bit generator of tiny_models.py (tensor i of the names sorted: seed 1000 + i; A in
±1/√in, B in ±0.01), so the Swift test makes the same adapter without a 15 MB file.
The item: the first item of data/sample/train.csv in Gemma's template, tokenized by
llama.cpp (whose tokenization ours equals); the loss is the cross-entropy over the
whole vocabulary of the answer token at the last position.

Writes Tests/TrainingTests/Fixtures/gemma_step.json: tokens, target, loss, and per
LoRA tensor the gradient's norm and first 8 values.

Usage from the repository root:
  python3 scripts/reference/training_gemma_fixture.py ~/.cache/suneung/models/gemma-3-270m-q4_k_m.gguf
"""
import ast
import csv
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
from llama_cpp import Llama
from peft import PeftModel
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from prompts import TEMPLATES, user_prompt
from tiny_models import root

MODULES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
RANK, ALPHA = 16, 32


def lcg(seed, count, scale):
    """tiny_models.lcg, vectorised: the same numbers (x = 1664525·x + 1013904223 mod 2^32)."""
    values = np.empty(count, dtype=np.float64)
    x = seed
    a, c, m = 1664525, 1013904223, 2 ** 32
    # Jump ahead in blocks: x_{n+k} = A_k·x_n + C_k (mod m).
    block = 4096
    multipliers, increments = np.empty(block, dtype=object), np.empty(block, dtype=object)
    am, cm = 1, 0
    for k in range(block):
        am, cm = (a * am) % m, (a * cm + c) % m
        multipliers[k], increments[k] = am, cm
    mult, inc = multipliers.astype(np.uint64), increments.astype(np.uint64)
    for start in range(0, count, block):
        n = min(block, count - start)
        # uint64 products overflow past 2^64; split x into 16-bit halves to stay exact.
        lo, hi = np.uint64(x & 0xFFFF), np.uint64(x >> 16)
        xs = ((mult[:n] * lo) % np.uint64(m) + (((mult[:n] * hi) % np.uint64(m)) << np.uint64(16)) % np.uint64(m) + inc[:n]) % np.uint64(m)
        values[start:start + n] = 2 * xs.astype(np.float64) / m - 1
        x = int(xs[n - 1])
    return (scale * values).astype(np.float32)


def item(model_path):
    """The first sample train item in Gemma's template: its tokens and answer token."""
    with open(root / "data/sample/train.csv", encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    answer = ast.literal_eval(row["problems"])["answer"]
    text = TEMPLATES["gemma"](user_prompt(row))
    vocab = Llama(model_path=model_path, vocab_only=True, verbose=False)
    tokens = vocab.tokenize(text.encode(), add_bos=False, special=True)
    return tokens, vocab.tokenize(str(answer).encode(), add_bos=False, special=False)[0]


def load_base(model_path):
    torch.set_num_threads(os.cpu_count())
    return AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path), torch_dtype=torch.float32)


def adapter_weights(config):
    """The adapter's A and B by PEFT name, from the generator (see the docstring)."""
    d, q, kv, ff = config.hidden_size, config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim, config.intermediate_size
    shapes = {"q_proj": (q, d), "k_proj": (kv, d), "v_proj": (kv, d), "o_proj": (d, q), "gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}
    tensors = {}
    for layer in range(config.num_hidden_layers):
        for module, block in MODULES.items():
            out, inp = shapes[module]
            prefix = f"base_model.model.model.layers.{layer}.{block}.{module}"
            tensors[prefix + ".lora_A.weight"] = (RANK, inp)
            tensors[prefix + ".lora_B.weight"] = (out, RANK)
    weights = {}
    for index, name in enumerate(sorted(tensors)):
        rows, cols = tensors[name]
        scale = 1 / math.sqrt(cols) if name.endswith("lora_A.weight") else 0.01
        weights[name] = torch.from_numpy(lcg(1000 + index, rows * cols, scale).reshape(rows, cols))
    return weights


def step(base, weights, tokens, target, autocast=None):
    """One forward and backward pass of the PEFT model: the loss and every LoRA gradient
    (float32), with the forward under torch.autocast("cpu", autocast) when given."""
    with tempfile.TemporaryDirectory() as folder:
        save_file(weights, f"{folder}/adapter_model.safetensors", metadata={"format": "pt"})
        with open(f"{folder}/adapter_config.json", "w") as f:
            json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0, "use_rslora": False,
                       "target_modules": list(MODULES), "bias": "none", "base_model_name_or_path": "gemma-3-270m"}, f)
        model = PeftModel.from_pretrained(base, folder, is_trainable=True)
        model.train()
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            logits = model(torch.tensor([tokens])).logits[0, -1]
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(target))
        loss.backward()
        gradients = {n.replace(".default", ""): p.grad.flatten().float() for n, p in model.named_parameters() if p.requires_grad}
        base = model.unload()
    assert set(gradients) == set(weights), "PEFT did not load every tensor"
    return loss.item(), gradients


if __name__ == "__main__":
    model_path = sys.argv[1]
    tokens, target = item(model_path)
    base = load_base(model_path)
    loss, gradients = step(base, adapter_weights(base.config), tokens, target)
    result = {"tokens": tokens, "target": target, "rank": RANK, "alpha": ALPHA, "loss": loss,
              "gradients": {n: {"norm": g.norm().item(), "head": g[:8].tolist()} for n, g in sorted(gradients.items())}}
    out = root / "Tests/TrainingTests/Fixtures/gemma_step.json"
    out.write_text(json.dumps(result) + "\n")
    print(f"{len(tokens)} tokens, target {target}, loss {loss:.6f}; wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
