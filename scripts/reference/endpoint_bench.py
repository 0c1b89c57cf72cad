"""`predict --endpoint` against a direct loop (endpoint_loop.py: the same completions
requests from Python's standard library, nothing stored), both on one llama-server
started here (127.0.0.1, a free port; scripts/llama-server.sh builds it) with the
default Gemma, the first N items of an exam file, the same concurrency; the loop runs
before and after. `make bench` runs it; prints the ratios (BENCHMARKS.md).

    python3 scripts/reference/endpoint_bench.py LLAMA_SERVER MODEL.gguf EXAM.csv SUNEUNG [N [CONCURRENCY]]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from endpoint_loop import loop


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    server, model, exam, suneung = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    process = subprocess.Popen(
        [server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "--alias", "gemma-3-270m", "-c", "4096", "-t", "2", "-np", "1",
         "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    sys.exit("llama-server did not start")
                time.sleep(0.3)
        before = loop(url, "gemma-3-270m", exam, count, concurrency)
        with tempfile.TemporaryDirectory() as workspace:
            subprocess.run([suneung, "init", "--workspace", workspace], check=True, capture_output=True)
            start = time.perf_counter()
            subprocess.run(
                [suneung, "predict", "--endpoint", url, "--served-model", "gemma-3-270m", "--dataset", exam, "--limit", str(count),
                 "--name", "bench", "--concurrency", str(concurrency), "--workspace", workspace], check=True, capture_output=True)
            whole = time.perf_counter() - start
            shown = subprocess.run([suneung, "show", "bench", "--format", "json", "--workspace", workspace], check=True,
                                   capture_output=True, text=True).stdout
            scoring = json.loads(shown)["lineage"]["endpoint"]["seconds"]
        after = loop(url, "gemma-3-270m", exam, count, concurrency)
    finally:
        process.terminate()
        process.wait()
    direct = (before + after) / 2
    print(f"predict --endpoint, {count} items, concurrency {concurrency}: whole command {whole:.1f} s, scoring {scoring:.1f} s; "
          f"direct loop {before:.1f} s and {after:.1f} s: ratio {scoring / direct:.3f} scoring, {whole / direct:.3f} whole command")


if __name__ == "__main__":
    main()
