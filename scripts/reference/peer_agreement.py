#!/usr/bin/env python3
"""The engine against llama.cpp (llama-cpp-python 0.3.36) on real items: llama.cpp's
answer-token logits for the first N items of an exam CSV, in the model's chat template,
compared with a prediction CSV that `suneung predict` wrote for the same items.

llama.cpp quantises activations inside its matrix products (logits differ from float32
by up to ~0.3), so the comparison is the share of items with the same answer (the issue
asks for at least 97% on 200 real items) and the spread of the logit differences.

    suneung predict --model M.gguf --dataset train.csv --limit 200 --name peer
    python3 scripts/reference/peer_agreement.py M.gguf train.csv --limit 200 \
        --compare predictions/peer@v1.csv [--write Tests/EngineTests/Fixtures/peer_train.json]

--write keeps llama.cpp's logits (id, answer logits) as a fixture; EnginePeerTests
checks the first of them when the real data is beside the checkout.
"""
import argparse
import csv
import hashlib
import json
import os
import pathlib
import sys

import numpy as np
from llama_cpp import Llama

from prompts import TEMPLATES, choice_count, user_prompt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model")
parser.add_argument("data")
parser.add_argument("--limit", type=int, default=200)
parser.add_argument("--template", default=None, help="gemma or chatml (default: from the file name)")
parser.add_argument("--compare", help="a prediction CSV with logit_1..logit_5")
parser.add_argument("--write", help="where to write llama.cpp's logits as JSON")
args = parser.parse_args()
template = args.template or ("gemma" if "gemma" in os.path.basename(args.model).lower() else "chatml")

csv.field_size_limit(sys.maxsize)
with open(args.data, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))[:args.limit]
llm = Llama(model_path=args.model, n_ctx=4096, n_batch=4096, n_threads=2, n_threads_batch=2, verbose=False)
answer_ids = [llm.tokenize(str(d).encode(), add_bos=False, special=True)[0] for d in range(1, 6)]
theirs = {}
for number, row in enumerate(rows, 1):
    tokens = llm.tokenize(TEMPLATES[template](user_prompt(row)).encode(), add_bos=False, special=True)
    if len(tokens) > 4096:
        print(f"{row['id']}: {len(tokens)} tokens, longer than 4,096: left out", file=sys.stderr)
        continue
    llm.reset()
    llm.eval(tokens)
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    theirs[row["id"]] = [float(logits[i]) for i in answer_ids[:choice_count(row)]]
    print(f"\rllama.cpp: {number}/{len(rows)}", end="", file=sys.stderr)
print(file=sys.stderr)

if args.write:
    data_sha = hashlib.sha256(pathlib.Path(args.data).read_bytes()).hexdigest()
    pathlib.Path(args.write).write_text(json.dumps({"model": os.path.basename(args.model), "template": template, "data_sha256": data_sha,
                                                    "items": [{"id": k, "answer_logits": v} for k, v in theirs.items()]}) + "\n")
    print(f"wrote {args.write}")

if args.compare:
    with open(args.compare, encoding="utf-8", newline="") as f:
        ours = {r["id"]: [float(r[f"logit_{i}"]) for i in range(1, 6) if r[f"logit_{i}"] != ""] for r in csv.DictReader(f)}
    ids = [i for i in theirs if i in ours]
    same = [i for i in ids if int(np.argmax(ours[i])) == int(np.argmax(theirs[i]))]
    diffs = np.array([abs(a - b) for i in ids for a, b in zip(ours[i], theirs[i])])
    print(f"{len(same)} of {len(ids)} items have the same answer ({100 * len(same) / len(ids):.1f}%)")
    print(f"answer-logit differences: median {np.median(diffs):.3f}, 95th percentile {np.percentile(diffs, 95):.3f}, largest {diffs.max():.3f}")
    for i in ids:
        if i not in same:
            a, b = sorted(ours[i], reverse=True), sorted(theirs[i], reverse=True)
            print(f"  {i}: ours {int(np.argmax(ours[i])) + 1} (margin {a[0] - a[1]:.3f}), llama.cpp {int(np.argmax(theirs[i])) + 1} (margin {b[0] - b[1]:.3f})")
