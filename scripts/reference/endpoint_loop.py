"""The direct loop that `predict --endpoint` is measured against (BENCHMARKS.md): the
same completions requests to the same server, with the same concurrency, from Python's
standard library, and nothing stored. Prints its seconds and items/s as a JSON line;
endpoint_bench.py (`make bench`) calls `loop`.

    python3 scripts/reference/endpoint_loop.py URL MODEL EXAM.csv N CONCURRENCY
"""
import csv
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from prompts import TEMPLATES, user_prompt


def score(url, model, prompt):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "cache_prompt": False, "logprobs": 1000})
    request = urllib.request.Request(url + "/completions", body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as reply:
        top = json.load(reply)["choices"][0]["logprobs"]
    return top


def loop(url, model, path, count, concurrency):
    """Seconds to score the first `count` items of `path`."""
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))[:count]
    prompts = [TEMPLATES["gemma"](user_prompt(row))[len("<bos>"):] for row in rows]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda p: score(url, model, p), prompts))
    return time.perf_counter() - start


def main():
    url, model, path, count, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    seconds = loop(url, model, path, count, concurrency)
    print(json.dumps({"seconds": seconds, "items_per_s": count / seconds}))


if __name__ == "__main__":
    main()
