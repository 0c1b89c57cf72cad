#!/usr/bin/env python3
"""Reference timing for suneung-bench: one optimiser step of PyTorch + PEFT on CPU
(float32, 2 threads as the machine has) on the same GGUF model, LoRA r=16 on all seven
projections, a sequence of the given length with the completion-only loss on its last
position (transformers computes the logits at every position, as the seed's trainer
did). pip install torch transformers peft gguf accelerate.

Usage: training_bench.py MODEL.gguf TOKENS  -> prints one JSON line: {"step_s": seconds}
"""
import json
import os
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

path, length = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(os.cpu_count())
base = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32)
config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = get_peft_model(base, config)
model.train()
optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
tokens = torch.randint(0, 1000, (1, length))
labels = torch.full((1, length), -100)
labels[0, -1] = 236770


def step():
    optimiser.zero_grad()
    loss = model(input_ids=tokens, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()


step()
times = []
for _ in range(3):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
print(json.dumps({"step_s": min(times)}))
