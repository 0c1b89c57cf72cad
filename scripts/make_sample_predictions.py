#!/usr/bin/env python3
"""Writes data/sample/predictions/: prediction files as a team's GPU runs would hand
them over, for the 40 items of data/sample/test.csv, plus leaderboard.csv with the
public/private accuracy each would get.

The per-choice logits are simulated (seeded): five checkpoints of one fine-tuning run of
growing skill, with a model's usual lean towards answer 1, and errors that overlap
between neighbouring checkpoints; one run exports probabilities instead of logits, one
API model gives answers only. The leaderboard splits the gold items into public and
private halves by sha256 of the id (even first byte: public), as the pipeline does.

Run from the repository root:  python3 scripts/make_sample_predictions.py
"""
import csv
import hashlib
import math
import pathlib
import random
import ast

root = pathlib.Path(__file__).resolve().parents[1]
sample = root / "data" / "sample"
out = sample / "predictions"
out.mkdir(exist_ok=True)

with open(sample / "test_gold.csv", encoding="utf-8", newline="") as f:
    gold = [(r["id"], ast.literal_eval(r["problems"])) for r in csv.DictReader(f)]

rng = random.Random(20261124)
shared_noise = [[rng.gauss(0, 1) for _ in range(5)] for _ in gold]


def logits_for(skill, own_weight, seed):
    own = random.Random(seed)
    rows = []
    for (item_id, problems), shared in zip(gold, shared_noise):
        n = len(problems["choices"])
        values = []
        for c in range(n):
            x = 0.35 * (c == 0) + skill * (c + 1 == problems["answer"])
            x += (1 - own_weight) * shared[c] + own_weight * own.gauss(0, 1)
            values.append(round(x, 4))
        rows.append((item_id, n, values))
    return rows


def write(name, header_prefix, rows, transform=lambda v: v):
    with open(out / name, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "answer"] + ([f"{header_prefix}_{c}" for c in range(1, 6)] if header_prefix else []))
        for item_id, n, values in rows:
            answer = max(range(n), key=lambda c: values[c]) + 1
            extra = [] if not header_prefix else [*transform(values), *[""] * (5 - n)]
            writer.writerow([item_id, answer] + extra)
    return {item_id: max(range(n), key=lambda c: values[c]) + 1 for item_id, n, values in rows}


def softmax(values):
    top = max(values)
    e = [math.exp(v - top) for v in values]
    return [round(x / sum(e), 6) for x in e]


answers = {}
for step, skill in zip([100, 200, 300, 400, 500], [0.6, 0.9, 1.1, 1.2, 1.25]):
    answers[f"ckpt-{step}"] = write(f"ckpt-{step}.csv", "logit", logits_for(skill, 0.6, step))
answers["seed2-ckpt-500"] = write("seed2-ckpt-500.csv", "prob", logits_for(1.0, 0.8, 999), softmax)
answers["api-model"] = write("api-model.csv", None, logits_for(0.8, 1.0, 7))

public = {item_id for item_id, _ in gold if hashlib.sha256(item_id.encode()).digest()[0] % 2 == 0}
with open(out / "leaderboard.csv", "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["name", "public", "private"])
    for name, predicted in answers.items():
        scores = []
        for half in (True, False):
            ids = [i for i, _ in gold if (i in public) == half]
            scores.append(round(sum(predicted[i] == p["answer"] for i, p in gold if i in ids) / len(ids), 4))
        writer.writerow([name, *scores])
print(f"wrote {len(answers)} prediction files and leaderboard.csv to {out.relative_to(root)}")
