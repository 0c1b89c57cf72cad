#!/usr/bin/env python3
"""A 7B-class model for memory and speed checks: a Qwen2-architecture GGUF with the
shapes of Qwen2.5-7B (28 layers, 3584 wide, 18944 FFN, 28 query and 4 KV heads of 128,
152,064 tokens, untied output) and random Q4_0 or Q8_0 weights, written with the `gguf`
package (pip install gguf==0.19.0 llama-cpp-python==0.3.36). The blocks are random
bytes with small fp16 scales (valid blocks, weights within ±0.05), so the file is made in
seconds rather than quantised from floats. The tokenizer is SmolLM2's (byte-level BPE),
its vocabulary padded with unused tokens to 152,064. Never committed: ~4.3 GB (Q4_0).

    python3 scripts/reference/big_model.py write OUT.gguf [--type Q4_0|Q8_0] [--smollm PATH]
    python3 scripts/reference/big_model.py llama OUT.gguf TOKEN,TOKEN,... IDS
        llama.cpp (2 threads, one batch) on the tokens: JSON with the seconds the prompt
        took (prefill_s) and the logits of the ids (comma-separated) at the last
        position (logit_1, logit_2, ...).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

D, FF, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 3584, 18944, 28, 28, 4, 128, 152064


def random_blocks(rng, rows, cols, kind):
    """rows × cols weights as random blocks of 32: fp16 scale, then 16 nibble bytes (Q4_0)
    or 32 signed bytes (Q8_0)."""
    blocks = rows * cols // 32
    if kind == "Q4_0":
        scale = rng.uniform(0.002, 0.006, blocks).astype(np.float16).view(np.uint8).reshape(blocks, 2)
        codes = rng.integers(0, 256, (blocks, 16), dtype=np.uint8)
    else:
        scale = rng.uniform(0.0001, 0.0004, blocks).astype(np.float16).view(np.uint8).reshape(blocks, 2)
        codes = rng.integers(0, 256, (blocks, 32), dtype=np.uint8)
    return np.concatenate([scale, codes], axis=1).reshape(rows, -1)


def write(path, kind, smollm):
    from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter
    rng = np.random.default_rng(7)
    source = GGUFReader(smollm)

    def field(name):
        f = source.fields[name]
        return [bytes(f.parts[i]).decode("utf-8", "replace") if f.types[-1].name == "STRING" else f.parts[i][0] for i in f.data]

    tokens, merges = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.merges")
    tokens += [f"<|unused_{i}|>" for i in range(VOCAB - len(tokens))]
    writer = GGUFWriter(path, "qwen2")
    writer.add_name("random Qwen2.5-7B shape")
    writer.add_context_length(32768)
    writer.add_embedding_length(D)
    writer.add_feed_forward_length(FF)
    writer.add_block_count(LAYERS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(1e6)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(source.fields["tokenizer.ggml.pre"].parts[-1].tobytes().decode() if "tokenizer.ggml.pre" in source.fields else "default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    qtype = getattr(GGMLQuantizationType, kind)

    def matrix(name, rows, cols):
        writer.add_tensor(name, random_blocks(rng, rows, cols, kind), raw_dtype=qtype)

    def vector(name, n, value=None):
        data = np.full(n, value, dtype=np.float32) if value is not None else rng.uniform(-0.1, 0.1, n).astype(np.float32)
        writer.add_tensor(name, data)

    matrix("token_embd.weight", VOCAB, D)
    for i in range(LAYERS):
        p = f"blk.{i}."
        vector(p + "attn_norm.weight", D, 1.0)
        matrix(p + "attn_q.weight", HEADS * HEAD_DIM, D)
        matrix(p + "attn_k.weight", KV_HEADS * HEAD_DIM, D)
        matrix(p + "attn_v.weight", KV_HEADS * HEAD_DIM, D)
        vector(p + "attn_q.bias", HEADS * HEAD_DIM)
        vector(p + "attn_k.bias", KV_HEADS * HEAD_DIM)
        vector(p + "attn_v.bias", KV_HEADS * HEAD_DIM)
        matrix(p + "attn_output.weight", D, HEADS * HEAD_DIM)
        vector(p + "ffn_norm.weight", D, 1.0)
        matrix(p + "ffn_gate.weight", FF, D)
        matrix(p + "ffn_up.weight", FF, D)
        matrix(p + "ffn_down.weight", D, FF)
    vector("output_norm.weight", D, 1.0)
    matrix("output.weight", VOCAB, D)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama(path, tokens, ids):
    from llama_cpp import Llama
    model = Llama(model_path=path, n_ctx=max(512, len(tokens) + 8), n_batch=len(tokens), n_ubatch=len(tokens), n_threads=2,
                  n_threads_batch=2, verbose=False)
    start = time.perf_counter()
    model.eval(tokens)
    seconds = time.perf_counter() - start
    logits = np.ctypeslib.as_array(model._ctx.get_logits(), shape=(model.n_vocab(),))
    result = {"prefill_s": seconds, "tokens": len(tokens)}
    result.update({f"logit_{n}": float(logits[i]) for n, i in enumerate(ids, 1)})
    json.dump(result, sys.stdout)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
sub = parser.add_subparsers(dest="command", required=True)
w = sub.add_parser("write")
w.add_argument("out")
w.add_argument("--type", default="Q4_0", choices=["Q4_0", "Q8_0"])
w.add_argument("--smollm", default=os.path.expanduser("~/.cache/suneung/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
r = sub.add_parser("llama")
r.add_argument("model")
r.add_argument("tokens")
r.add_argument("ids")
args = parser.parse_args()
if args.command == "write":
    write(args.out, args.type, args.smollm)
else:
    llama(args.model, [int(t) for t in args.tokens.split(",")], [int(i) for i in args.ids.split(",")])
