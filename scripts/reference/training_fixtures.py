#!/usr/bin/env python3
"""The trainer's reference: PyTorch + PEFT on the tiny random models of tiny_models.py
(pip install torch transformers peft gguf accelerate safetensors).

For each family, a LoRA adapter with random A and B (B non-zero, so that every
gradient is), saved as a PEFT folder, and on the fixed token sequence of tiny_models.py:
  - the loss and the gradient of every lora_A / lora_B tensor for the full-vocabulary
    loss over two targets (the positions before the last two tokens); the loss and each
    gradient's norm and first 16 values for the loss over the answer tokens only
    (tokens 1..5, one target);
  - three AdamW steps (weight decay, linear schedule with one warm-up step, gradient
    clipping by global norm) on the full loss: the loss before each step and each
    tensor's norm and first 16 values after them.
Values are rounded to 7 significant digits (float32 has about 7).

Writes Tests/TrainingTests/Fixtures/adapters/tiny-ARCH/ and
Tests/TrainingTests/Fixtures/tiny_training.json.

exaone is EXAONE 3.x as transformers runs it natively (ExaoneConfig → LlamaForCausalLM, Llama's
module names); exaone4 has 64 layers (see tiny_models.py), so its adapter covers only k_proj and
o_proj to keep the fixture's full gradients small (~29k values).

Regenerate from the repository root:   python3 scripts/reference/training_fixtures.py [ARCH ...]
With architectures named, only their adapter folders and entries are rewritten; the other
entries are kept as committed (exaone, exaone4 and qwen3 were added so:
python3 scripts/reference/training_fixtures.py exaone exaone4 qwen3).

Versions used: Python 3.11.7, torch 2.15.0 (CPU), transformers 5.24.0, peft 0.21.2,
accelerate 1.15.0, safetensors 0.8.0, gguf 0.19.0.
"""
import json
import math
import sys
import tempfile

import torch
from peft import PeftModel
from transformers import get_linear_schedule_with_warmup

from tiny_models import FAMILIES, TOKENS, V, load, root, save_random_adapter

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS = {
    "llama": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=False),
    "qwen2": dict(r=2, lora_alpha=8, target_modules=ALL, use_rslora=True),
    "gemma2": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=False),
    "gemma3": dict(r=2, lora_alpha=4, target_modules=["q_proj", "k_proj", "o_proj", "up_proj", "down_proj"], use_rslora=False),
    "exaone": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=False),
    "exaone4": dict(r=2, lora_alpha=4, target_modules=["k_proj", "o_proj"], use_rslora=False),
    "qwen3": dict(r=2, lora_alpha=4, target_modules=ALL, use_rslora=True),
}
FULL_TARGETS = [(22, TOKENS[23]), (23, 5)]
CHOICES = [1, 2, 3, 4, 5]
CHOICE_TARGET = (23, 3)
OPTIMISER = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, warmup=1, total=4, max_norm=1.0, steps=3)

fixtures = root / "Tests/TrainingTests/Fixtures"


def full_loss(model):
    logits = model(torch.tensor([TOKENS])).logits[0]
    return sum(torch.nn.functional.cross_entropy(logits[p], torch.tensor(t)) for p, t in FULL_TARGETS) / len(FULL_TARGETS)


def choice_loss(model):
    logits = model(torch.tensor([TOKENS])).logits[0, CHOICE_TARGET[0], CHOICES]
    return torch.nn.functional.cross_entropy(logits, torch.tensor(CHOICES.index(CHOICE_TARGET[1])))


def rounded(values):
    return [float(f"{x:.7g}") for x in values]


def summary(tensors):
    return {n: {"norm": math.sqrt(sum(x * x for x in v)), "head": v[:16]} for n, v in tensors.items()}


def gradients(model, loss_fn):
    model.zero_grad()
    loss = loss_fn(model)
    loss.backward()
    named = {n.replace(".default", ""): p for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), {n: rounded(p.grad.flatten().tolist()) for n, p in sorted(named.items())}


result = {"tokens": TOKENS, "vocabulary": V, "full_targets": FULL_TARGETS, "choices": CHOICES, "choice_target": CHOICE_TARGET,
          "optimiser": OPTIMISER, "models": []}
out = fixtures / "tiny_training.json"
chosen = sys.argv[1:] or [spec["architecture"] for spec in FAMILIES]
kept = {m["architecture"]: m for m in json.loads(out.read_text())["models"]} if sys.argv[1:] else {}
with tempfile.TemporaryDirectory() as folder:
    for spec in FAMILIES:
        arch = spec["architecture"]
        if arch not in chosen:
            if arch in kept:
                result["models"].append(kept[arch])
            continue
        settings = ADAPTERS[arch]
        adapter = fixtures / f"adapters/tiny-{arch}"
        name = save_random_adapter(folder, spec, settings, adapter, seed=11)
        model = PeftModel.from_pretrained(load(folder, name), adapter, is_trainable=True)
        model.train()  # dropout is 0: train mode changes nothing but requires_grad

        full, full_gradients = gradients(model, full_loss)
        choice, choice_gradients = gradients(model, choice_loss)

        params = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(params, lr=OPTIMISER["lr"], betas=OPTIMISER["betas"], eps=OPTIMISER["eps"],
                                      weight_decay=OPTIMISER["weight_decay"])
        schedule = get_linear_schedule_with_warmup(optimiser, OPTIMISER["warmup"], OPTIMISER["total"])
        losses = []
        for _ in range(OPTIMISER["steps"]):
            optimiser.zero_grad()
            loss = full_loss(model)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, OPTIMISER["max_norm"])
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        final = {n.replace(".default", ""): p.detach().flatten().tolist() for n, p in sorted(model.named_parameters()) if p.requires_grad}
        result["models"].append({**spec, "adapter": f"adapters/tiny-{arch}", "full_loss": full, "full_gradients": full_gradients,
                                 "choice_loss": choice, "choice_gradients": summary(choice_gradients), "step_losses": losses,
                                 "final": summary(final)})
        norm = math.sqrt(sum(x * x for g in full_gradients.values() for x in g))
        print(f"{arch}: loss {full:.5f} (choices {choice:.5f}), gradient norm {norm:.4f}, losses over the steps {[round(x, 5) for x in losses]}")

out.write_text(json.dumps(result, separators=(",", ":")) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
