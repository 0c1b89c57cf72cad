#!/usr/bin/env python3
"""Reference timings for suneung-bench, measured in the same run: llama.cpp
(llama-cpp-python) tokenizing the baseline prompts of a test CSV in Gemma's template,
and the gguf package opening the Gemma file and dequantising every tensor (numpy).

It also times llama.cpp evaluating the first 20 prompts (2 threads, one batch each),
for the engine's prompt-processing throughput.

Usage: bench_reference.py MODEL.gguf TEST.csv  -> prints one JSON line of seconds.
"""
import csv
import json
import sys
import time

from prompts import TEMPLATES, user_prompt

model, test = sys.argv[1], sys.argv[2]
csv.field_size_limit(sys.maxsize)

result = {}
with open(test, encoding="utf-8", newline="") as f:
    prompts = [TEMPLATES["gemma"](user_prompt(row)) for row in csv.DictReader(f)]
try:
    from llama_cpp import Llama
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    start = time.perf_counter()
    tokens = sum(len(llm.tokenize(p.encode(), add_bos=False, special=True)) for p in prompts)
    result["tokenize_s"] = time.perf_counter() - start
    result["tokens"] = tokens
except ImportError:
    pass
try:
    from gguf import GGUFReader
    from gguf.quants import dequantize
    start = time.perf_counter()
    reader = GGUFReader(model)
    result["open_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for t in reader.tensors:
        dequantize(t.data, t.tensor_type)
    result["dequantize_s"] = time.perf_counter() - start
except ImportError:
    pass

# The engine: prompt processing of the first 20 test prompts, 2 threads, one batch each.
try:
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=4096, n_batch=4096, n_threads=2, n_threads_batch=2, verbose=False)
    batch = [llm.tokenize(p.encode(), add_bos=False, special=True) for p in prompts[:20]]
    start = time.perf_counter()
    for tokens in batch:
        llm.reset()
        llm.eval(tokens)
    result["prefill_s"] = time.perf_counter() - start
    result["prefill_tokens"] = sum(len(t) for t in batch)
except ImportError:
    pass
print(json.dumps(result))
