#!/usr/bin/env python3
"""Exact reference for the engine: Hugging Face transformers in float32 on the same
dequantised GGUF weights (pip install torch transformers gguf).

For the first 8 items of data/sample/test.csv, the baseline prompt in each default
model's chat template is tokenized by llama.cpp (the same ids as ours, checked by the
tokenizer tests) and run through AutoModelForCausalLM.from_pretrained(folder,
gguf_file=...). The fixture keeps, per prompt, the last-position logits of the answer
tokens "1".."5", of the 10 largest logits, and of 256 vocabulary ids drawn with a fixed
seed (the whole vector would be megabytes).

Where the competition data is beside the checkout (../shared/data), 30 real training
items spread over the file (every 53rd, by id) are run too, into
Tests/EngineTests/Fixtures/engine_exact_real.json with the file's sha256 (64 sampled ids
there: 30 prompts of ~700 tokens).

SmolLM2 is also run with a PEFT LoRA adapter (seeded random A and B, r 2, on q, v and
down of layers 0, 15 and 29, stored in F16 as half-precision training saves it) written
to Tests/EngineTests/Fixtures/adapters/smollm2-sample/; its answer logits are kept too.

Regenerate from the repository root (make models; make reference; pip install torch
transformers):   python3 scripts/reference/engine_exact_fixtures.py
"""
import csv
import hashlib
import json
import os
import pathlib
import sys

import numpy as np
import torch
from llama_cpp import Llama
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from prompts import TEMPLATES, user_prompt

root = pathlib.Path(__file__).resolve().parents[2]
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
out = root / "Tests/EngineTests/Fixtures/engine_exact.json"

torch.set_num_threads(2)
with open(root / "data/sample/test.csv", encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))[:8]
result = {}


def write_adapter(folder, file):
    """A seeded random LoRA adapter for the model in `file`, stored in F16."""
    torch.manual_seed(11)
    base = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=file, torch_dtype=torch.float32)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[0, 15, 29],
                        lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(base, config).save_pretrained(folder)
    config_file = folder / "adapter_config.json"
    config_file.write_text(config_file.read_text().replace(str(models), "SmolLM2-135M-Instruct.Q4_1"))
    weights = folder / "adapter_model.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})


def answer_logits(model, vocab, template, answer_ids):
    model.eval()
    values = []
    for row in rows:
        tokens = vocab.tokenize(TEMPLATES[template](user_prompt(row)).encode(), add_bos=False, special=True)
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0, -1]
        values.append({"id": row["id"], "answer_logits": [float(logits[i]) for i in answer_ids]})
    return values


def cases_for(model, vocab, template, rows, answer_ids, sample_ids):
    cases = []
    for row in rows:
        tokens = vocab.tokenize(TEMPLATES[template](user_prompt(row)).encode(), add_bos=False, special=True)
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0, -1].numpy()
        top = np.argsort(-logits)[:10].tolist()
        cases.append({"id": row["id"], "tokens": len(tokens),
                      "answer_logits": [float(logits[i]) for i in answer_ids],
                      "top_ids": top, "top_logits": [float(logits[i]) for i in top],
                      "sample_logits": [float(logits[i]) for i in sample_ids]})
    return cases


real_file = root.parent / "shared/data/train.csv"
real_rows = []
if real_file.exists():
    csv.field_size_limit(sys.maxsize)
    with open(real_file, encoding="utf-8", newline="") as f:
        real_rows = list(csv.DictReader(f))[::53][:30]
real = {"data_sha256": hashlib.sha256(real_file.read_bytes()).hexdigest() if real_rows else None}

for file, template in [("gemma-3-270m-q4_k_m.gguf", "gemma"), ("SmolLM2-135M-Instruct.Q4_1.gguf", "chatml")]:
    vocab = Llama(model_path=str(models / file), vocab_only=True, verbose=False)
    model = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=file, torch_dtype=torch.float32)
    model.eval()
    answer_ids = [vocab.tokenize(str(d).encode(), add_bos=False, special=True)[0] for d in range(1, 6)]
    sample_ids = np.random.default_rng(7).choice(model.config.vocab_size, size=256, replace=False).tolist()
    cases = cases_for(model, vocab, template, rows, answer_ids, sample_ids)
    result[file] = {"template": template, "answer_ids": answer_ids, "sample_ids": sample_ids, "cases": cases}
    print(file, cases[0]["answer_logits"])
    if real_rows:
        real[file] = {"template": template, "answer_ids": answer_ids, "sample_ids": sample_ids[:64],
                      "cases": cases_for(model, vocab, template, real_rows, answer_ids, sample_ids[:64])}
        print(file, "real items:", len(real_rows))
    if template == "chatml":
        adapter = root / "Tests/EngineTests/Fixtures/adapters/smollm2-sample"
        write_adapter(adapter, file)
        base = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=file, torch_dtype=torch.float32)
        adapted = answer_logits(PeftModel.from_pretrained(base, adapter), vocab, template, answer_ids)
        result[file]["adapter"] = {"folder": "adapters/smollm2-sample", "cases": adapted}
        print(file, "with the adapter", adapted[0]["answer_logits"])
out.write_text(json.dumps(result) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
if real_rows:
    real_out = out.with_name("engine_exact_real.json")
    real_out.write_text(json.dumps(real) + "\n")
    print(f"wrote {real_out.relative_to(root)} ({real_out.stat().st_size} bytes)")
else:
    print(f"{real_file} is absent: engine_exact_real.json left as it is")
