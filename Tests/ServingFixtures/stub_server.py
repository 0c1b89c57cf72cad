"""A stand-in for vLLM's OpenAI server, for the tests of `suneung predict --endpoint`.

It answers in the shapes of the committed fixtures (vllm_*.json beside this file: real
bodies from vLLM's issues, pull requests and source, see each one's _source): /v1/models
as vllm_models.json, completions as vllm_completions_echo_logprobs.json, and its errors
word for word from vllm_errors.json. Like vLLM, it refuses more log-probabilities than
--max-logprobs (default 20) and scores a prompt's own tokens with echo. Its numbers are
made up but deterministic: each prompt gets log-probabilities over a small vocabulary
from its sha256, and on about a third of the prompts one answer digit lies below the
top 20, so that a client must use echo for it. Faults on demand (--fault KIND:EVERY):
500, 429 with Retry-After, a hang, a connection dropped mid-reply, truncated JSON, each
at most once per prompt.

    python3 stub_server.py --port 0 [--model NAME] [--key KEY] [--max-logprobs N]
        [--fault 500:3] [--die-after N] [--delay SECONDS] [--no-logprobs]

It prints "port N" once it listens, and stops when its standard input closes.
"""

import argparse
import hashlib
import json
import math
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def fixture(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


MODELS = fixture("vllm_models.json")
COMPLETION = fixture("vllm_completions_echo_logprobs.json")
ERRORS = {e["body"].get("error", e["body"]).get("message", ""): e for e in fixture("vllm_errors.json")["examples"]}


def error_body(starts):
    """A fixture's error body whose message starts so (they are vLLM's own words)."""
    for message, example in ERRORS.items():
        if message.startswith(starts):
            return example["http_status"], json.loads(json.dumps(example["body"]))
    raise KeyError(starts)


VOCAB = ["1", "2", "3", "4", "5"] + [t for t in "abcdefghijklmnopqrstuvwxyz"] + ["\n", " ", "정답", "<end_of_turn>"]


def next_token_logprobs(prompt):
    """log P(token | prompt) over VOCAB, from the prompt's sha256."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    logits = [(digest[i % 32] / 255.0) * 4.0 for i in range(len(VOCAB))]
    if digest[0] % 3 == 0:
        logits[VOCAB.index(str(1 + digest[1] % 5))] = -12.0  # one digit below the top 20
    top = max(logits)
    norm = top + math.log(sum(math.exp(l - top) for l in logits))
    return {t: l - norm for t, l in zip(VOCAB, logits)}


def pieces(text):
    """A stand-in tokenisation: the text in pieces of up to 4 characters."""
    return [text[i : i + 4] for i in range(0, len(text), 4)] or [""]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.completions = 0
        self.faulted = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def authorised(self):
        key = self.server.state.args.key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self.reply(401, {"error": "Unauthorized"})  # vLLM's --api-key middleware
        return False

    def do_GET(self):
        if not self.authorised():
            return
        if self.path == "/v1/models":
            body = json.loads(json.dumps(MODELS))
            del body["_source"], body["_note"]
            card = body["data"][0]
            card.update(id=self.server.state.args.model, root=f"/models/{self.server.state.args.model}", max_model_len=4096)
            body["data"] = [card]
            self.reply(200, body)
        else:
            self.reply(404, {"detail": "Not Found"})

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.authorised():
            return
        if self.path != "/v1/completions":
            return self.reply(404, {"detail": "Not Found"})
        with state.lock:
            state.completions += 1
            count = state.completions
        if state.args.die_after and count > state.args.die_after:
            os._exit(0)
        # A fault strikes every Nth request, once per prompt: each prompt's next try
        # goes through, so a client that tries again always finishes.
        prompt = request.get("prompt", "")
        for kind, every in state.args.fault:
            with state.lock:
                strike = count % every == 0 and prompt not in state.faulted
                if strike:
                    state.faulted.add(prompt)
            if strike:
                if kind == "500":
                    status, body = error_body("4226")
                    return self.reply(status, body)
                if kind == "429":
                    return self.reply(429, {"error": {"message": "Too many requests", "type": "RateLimitError", "param": None, "code": 429}}, [("Retry-After", "1")])
                if kind == "hang":
                    time.sleep(state.args.hang_seconds)
                if kind == "drop":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "4000")
                    self.end_headers()
                    self.wfile.write(b'{"id": "cmpl-1", "choices": [{"logpro')
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if kind == "truncate":
                    data = b'{"id": "cmpl-1", "object": "text_completion", "choices": [{"index": 0, "logprobs": {"top_log'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
        if state.args.delay:
            time.sleep(state.args.delay)
        if request.get("model") != state.args.model:
            status, body = error_body("The model `")
            body["error"]["message"] = f"The model `{request.get('model')}` does not exist."
            return self.reply(status, body)
        k = request.get("logprobs")
        if k is not None and k > state.args.max_logprobs:
            status, body = error_body("Requested sample logprobs")
            body["error"]["message"] = f"Requested sample logprobs of {k}, which is greater than max allowed: {state.args.max_logprobs} (parameter=logprobs, value={k})"
            return self.reply(status, body)
        prompt = request["prompt"]
        if "CONTEXT-OVERFLOW" in prompt:
            return self.reply(*error_body("'max_tokens' or"))
        body = completion(request, prompt, k)
        if state.args.no_logprobs:
            body["choices"][0]["logprobs"] = None
        self.reply(200, body)


def completion(request, prompt, k):
    """A completions body shaped as vllm_completions_echo_logprobs.json."""
    generated = max(next_token_logprobs(prompt).items(), key=lambda e: e[1])[0]
    tokens, offsets, values, tops = [], [], [], []
    if request.get("echo"):
        # The prompt's own tokens; the last piece of a prompt ending in a digit is that
        # digit, scored after the text before it (as a model scores a prompt).
        body, last = (prompt[:-1], prompt[-1]) if prompt[-1:].isdigit() else (prompt, None)
        offset = 0
        for i, piece in enumerate(pieces(body)):
            tokens.append(piece)
            offsets.append(offset)
            values.append(None if i == 0 else -1.5)
            tops.append(None if i == 0 else {piece: -1.5})
            offset += len(piece)
        if last is not None:
            lp = next_token_logprobs(body)[last]
            tokens.append(last)
            offsets.append(offset)
            values.append(lp)
            tops.append({last: lp})
    distribution = next_token_logprobs(prompt)
    ranked = sorted(distribution.items(), key=lambda e: -e[1])[: (k or 0)]
    top = dict(ranked)
    top[generated] = distribution[generated]
    tokens.append(generated)
    offsets.append(len(prompt))
    values.append(distribution[generated])
    tops.append(top)
    body = {key: value for key, value in COMPLETION.items() if not key.startswith("_")}
    choice = dict(COMPLETION["choices"][0])
    choice.update(
        text=(prompt if request.get("echo") else "") + generated,
        logprobs={"text_offset": offsets, "token_logprobs": values, "tokens": tokens, "top_logprobs": tops},
        finish_reason="length",
    )
    body.update(model=request["model"], choices=[choice], usage={"prompt_tokens": len(pieces(prompt)), "total_tokens": len(pieces(prompt)) + 1, "completion_tokens": 1})
    return body


class QuietServer(ThreadingHTTPServer):
    """A client that gives up on a hung or dropped reply (as it should) is no error here."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="Qwen/Qwen2.5-32B-Instruct")
    parser.add_argument("--key")
    parser.add_argument("--max-logprobs", type=int, default=20)
    parser.add_argument("--fault", action="append", default=[], type=lambda s: (s.split(":")[0], int(s.split(":")[1])))
    parser.add_argument("--hang-seconds", type=float, default=4)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--no-logprobs", action="store_true", help='"logprobs": null, as llama.cpp builds before 2025 answered')
    args = parser.parse_args()
    server = QuietServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print(f"port {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # the test closes it (or dies): then stop


if __name__ == "__main__":
    main()
