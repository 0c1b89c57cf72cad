#!/usr/bin/env python3
"""Peer reference for the engine: llama.cpp (llama-cpp-python 0.3.36) on both default
models. For the first 8 items of data/sample/test.csv, the baseline prompt in the model's
chat template is tokenized and evaluated; the fixture keeps the token count, the
last-position logits of the answer tokens "1".."5" and the arg-max token.

llama.cpp quantises activations inside its matrix products, so its logits differ from
an exact float32 computation by up to ~0.3; the Swift test allows for that and asks for
the same answer (arg-max over the choices) on most items.

Regenerate from the repository root (make models; make reference):
    python3 scripts/reference/engine_peer_fixtures.py
"""
import csv
import json
import os
import pathlib

import numpy as np
from llama_cpp import Llama

from prompts import TEMPLATES, choice_count, user_prompt

root = pathlib.Path(__file__).resolve().parents[2]
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
out = root / "Tests/EngineTests/Fixtures/engine_peer.json"

with open(root / "data/sample/test.csv", encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))[:8]
result = {}
for file, template in [("gemma-3-270m-q4_k_m.gguf", "gemma"), ("SmolLM2-135M-Instruct.Q4_1.gguf", "chatml")]:
    llm = Llama(model_path=str(models / file), n_ctx=2048, n_batch=2048, verbose=False, n_threads=2)
    answer_ids = [llm.tokenize(str(d).encode(), add_bos=False, special=True)[0] for d in range(1, 6)]
    cases = []
    for row in rows:
        choices = choice_count(row)
        tokens = llm.tokenize(TEMPLATES[template](user_prompt(row)).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        logits = np.array(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)), dtype=np.float32)
        cases.append({"id": row["id"], "tokens": len(tokens), "choices": choices,
                      "answer_logits": [float(logits[i]) for i in answer_ids], "argmax": int(np.argmax(logits))})
    result[file] = {"template": template, "answer_ids": answer_ids, "cases": cases}
    print(file, [c["answer_logits"][:2] for c in cases[:2]])
out.write_text(json.dumps(result, indent=1) + "\n")
print(f"wrote {out.relative_to(root)}")
