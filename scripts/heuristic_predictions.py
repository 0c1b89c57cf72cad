#!/usr/bin/env python3
"""Simple, deterministic prediction sets with logits for any exam CSV, made without a
language model: lexical overlap between each choice and the passage, with and without
the answer-position prior and the flip for negative questions ("옳지 않은 것은?").

They are real, varied members for measuring ensembles on labelled data before the
inference engine exists, e.g. on ../shared/data/train.csv:

    python3 scripts/heuristic_predictions.py ../shared/data/train.csv /tmp/heuristics

writes one `id,answer,logit_1..logit_5` file per heuristic into the folder.
"""
import ast
import csv
import math
import pathlib
import sys

exam, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
csv.field_size_limit(sys.maxsize)
with open(exam, encoding="utf-8-sig", newline="") as f:
    rows = list(csv.DictReader(f))

NEGATIVE = ("않은", "아닌", "틀린", "없는", "옳지")
PRIOR = [math.log(p) for p in (0.40, 0.22, 0.16, 0.15, 0.07)]


def grams(text, n):
    text = "".join(text.split())
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def overlap(choice, context, n):
    c = grams(choice, n)
    return len(c & grams(context, n)) / max(1, len(c))


def words(choice, context):
    c = set(choice.split())
    return len(c & set(context.split())) / max(1, len(c))


systems = {
    "bigram": lambda ch, ctx, q: [4 * overlap(c, ctx, 2) for c in ch],
    "trigram": lambda ch, ctx, q: [4 * overlap(c, ctx, 3) for c in ch],
    "words": lambda ch, ctx, q: [4 * words(c, ctx) for c in ch],
    "bigram-negation": lambda ch, ctx, q: [(-4 if any(w in q for w in NEGATIVE) else 4) * overlap(c, ctx, 2) for c in ch],
    "bigram-prior": lambda ch, ctx, q: [4 * overlap(c, ctx, 2) + PRIOR[i] for i, c in enumerate(ch)],
    "length": lambda ch, ctx, q: [math.log(1 + len(c)) for c in ch],
}

for name, system in systems.items():
    with open(out / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "answer"] + [f"logit_{i}" for i in range(1, 6)])
        for row in rows:
            problems = ast.literal_eval(row["problems"])
            context = row["paragraph"] + " " + (row.get("question_plus") or problems.get("question_plus") or "")
            logits = [round(x, 6) for x in system(problems["choices"], context, problems["question"])]
            answer = max(range(len(logits)), key=lambda i: (logits[i], -i)) + 1
            writer.writerow([row["id"], answer] + logits + [""] * (5 - len(logits)))
print(f"wrote {len(systems)} prediction sets for {len(rows)} items to {out}")
