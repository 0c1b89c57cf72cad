#!/usr/bin/env python3
"""Does an adapter saved by `suneung train` load in PEFT and give what Suneung gives?
(pip install torch transformers peft gguf accelerate llama-cpp-python)

Loads the GGUF model in transformers (float32), the checkpoint folder with
PeftModel.from_pretrained, and compares the answer-token logits at the last position
with the logit columns of a prediction CSV that `suneung predict --checkpoint` wrote
for the same items (prompts that fit without shortening).

Usage: peft_interop.py MODEL.gguf CHECKPOINT_DIR DATASET.csv PREDICTIONS.csv [N]
Prints the largest difference and the agreement of the answers.
"""
import csv
import os
import sys

import torch
from llama_cpp import Llama
from peft import PeftModel
from transformers import AutoModelForCausalLM

from prompts import TEMPLATES, choice_count, user_prompt

model_path, checkpoint, dataset, predictions = sys.argv[1:5]
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 20
csv.field_size_limit(sys.maxsize)
with open(dataset, encoding="utf-8", newline="") as f:
    rows = {r["id"]: r for r in csv.DictReader(f)}
with open(predictions, encoding="utf-8", newline="") as f:
    ours = list(csv.DictReader(f))[:limit]

template = "gemma" if "gemma" in os.path.basename(model_path).lower() else "chatml"
vocab = Llama(model_path=model_path, vocab_only=True, verbose=False)
answer_tokens = [vocab.tokenize(str(d).encode(), add_bos=False, special=False)[0] for d in range(1, 6)]
torch.set_num_threads(os.cpu_count())
base = AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path), dtype=torch.float32)
model = PeftModel.from_pretrained(base, checkpoint)
model.eval()
worst, same = 0.0, 0
for prediction in ours:
    row = rows[prediction["id"]]
    n = choice_count(row)
    tokens = vocab.tokenize(TEMPLATES[template](user_prompt(row)).encode(), add_bos=False, special=True)
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0, -1, answer_tokens[:n]].tolist()
    theirs = [float(prediction[f"logit_{i + 1}"]) for i in range(n)]
    worst = max(worst, max(abs(a - b) for a, b in zip(logits, theirs)))
    same += max(range(n), key=lambda i: logits[i]) + 1 == int(prediction["answer"])
print(f"{len(ours)} items: largest answer-logit difference {worst:.2e}; same answer on {same}/{len(ours)}")
