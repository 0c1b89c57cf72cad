#!/usr/bin/env python3
"""Reference for `suneung model merge`: the PEFT adapter of
Tests/EngineTests/Fixtures/adapters/smollm2-sample merged into SmolLM2-135M-Instruct.Q4_1.gguf
with numpy and the `gguf` package, then run by llama.cpp (llama-cpp-python).

Merge, per adapted linear weight (blk.N.attn_q/attn_k/attn_v/attn_output/ffn_gate/ffn_up/
ffn_down.weight; here q, v and down of layers 0, 15 and 29):
  W     = gguf.quants.dequantize(base tensor)             float32, [out, in]
  A, B  = lora_A [r, in], lora_B [out, r] from the safetensors, widened to float32
          (q_proj and k_proj: B's rows permuted into llama.cpp's RoPE order, per head of
          size D: row h·D + 2i + j of llama.cpp's is row h·D + j·D/2 + i of Hugging Face's)
  scale = lora_alpha / r  (lora_alpha / √r with use_rslora), as a float32
  M     = W + scale·(B @ A)   all float32: numpy matmul, then the scale, then the sum
  out   = gguf.quants.quantize(M, Q8_0)  (bit-identical to ggml's quantize_row_q8_0_ref)
Every other tensor and every metadata key is copied unchanged (general.file_type too) into a
GGUF written by gguf.GGUFWriter to a temporary folder (never committed).

llama.cpp then runs the first 30 items of the real training CSV (/work/shared/data/train.csv,
or SUNEUNG_DATA) in the baseline prompt, chatml, tokenized and evaluated as
engine_peer_fixtures.py does, on: the merged file ("merged"), the base file ("base"), and the
base file with the same adapter as a LoRA GGUF (lora_path; "lora": written here with
GGUFWriter, general.type adapter, adapter.lora.alpha, F32 lora_a [r, in] / lora_b [out, r]
with the same permutation).

Writes Tests/EngineTests/Fixtures/merge.json:
  "base_model", "adapter", "formula", "scale", "type", "data_sha256", "answer_ids";
  "tensors": per adapted tensor: sha256, byte count and first 64 bytes (hex) of the merged
     Q8_0 bytes, max |M − W| ("max_delta") and max |dequantize(out) − W| ("max_change"),
     plus "sha256_unfused" where a per-rank loop (Σ_k B[:,k]·A[k,:] in k order, products
     rounded to float32, no FMA) gives other bytes than numpy's matmul (absent when equal);
  "merged", "base", "lora": per item: id, tokens, choices, answer_logits (one per choice).

Versions used: Python 3.11.7, numpy 2.4.6, gguf 0.19.0, llama-cpp-python 0.3.36,
safetensors 0.8.0.
Regenerate from the repository root (make models; the real data beside the checkout):
    python3 scripts/reference/merge_fixtures.py [--keep DIR]   (--keep: leave the GGUFs there)
"""
import argparse
import csv
import hashlib
import json
import os
import pathlib
import re
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize
from llama_cpp import Llama
from safetensors.numpy import load_file

from prompts import TEMPLATES, choice_count, user_prompt

root = pathlib.Path(__file__).resolve().parents[2]
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
data = pathlib.Path(os.environ.get("SUNEUNG_DATA", "/work/shared/data/train.csv"))
base_file = models / "SmolLM2-135M-Instruct.Q4_1.gguf"
adapter_dir = root / "Tests/EngineTests/Fixtures/adapters/smollm2-sample"
out = root / "Tests/EngineTests/Fixtures/merge.json"
ITEMS = 30
NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down"}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--keep", help="write the merged and LoRA GGUFs into this folder and keep them")
args = parser.parse_args()


def permute_rows(b, heads):
    """Hugging Face's q/k row order → llama.cpp's (convert_hf_to_gguf.py's LlamaModel.permute)."""
    rows, rest = b.shape[0], b.shape[1:]
    d = rows // heads
    return b.reshape(heads, 2, d // 2, *rest).swapaxes(1, 2).reshape(b.shape)


def adapter_pairs(folder, heads, heads_kv):
    """{gguf tensor name: (A float32 [r, in], B float32 [out, r], permuted for q/k)}."""
    tensors = load_file(folder / "adapter_model.safetensors")
    pairs = {}
    for key, a in tensors.items():
        m = re.fullmatch(r"base_model\.model\.model\.layers\.(\d+)\.(\w+\.\w+)\.lora_A\.weight", key)
        if not m:
            assert ".lora_B." in key, key
            continue
        b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        kind = NAMES[m.group(2)]
        if kind == "attn_q":
            b = permute_rows(b, heads)
        elif kind == "attn_k":
            b = permute_rows(b, heads_kv)
        pairs[f"blk.{m.group(1)}.{kind}.weight"] = (a.astype(np.float32), np.ascontiguousarray(b))
    return pairs


def copy_metadata(reader, writer):
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # the header's own fields; GGUFWriter writes general.architecture itself, first
        if field.name == "general.alignment":
            writer.data_alignment = int(field.contents())
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)


def field(reader, key):
    return reader.fields[key].contents()


reader = GGUFReader(base_file)
arch = field(reader, "general.architecture")
heads, heads_kv = field(reader, f"{arch}.attention.head_count"), field(reader, f"{arch}.attention.head_count_kv")
config = json.loads((adapter_dir / "adapter_config.json").read_text())
assert not config.get("rank_pattern") and not config.get("alpha_pattern") and not config.get("use_dora")
rank, alpha = config["r"], config["lora_alpha"]
scale = np.float32(alpha / np.sqrt(rank) if config.get("use_rslora") else alpha / rank)
pairs = adapter_pairs(adapter_dir, heads, heads_kv)
print(f"{len(pairs)} adapted tensors, r {rank}, alpha {alpha}, scale {scale}")

tmp = tempfile.TemporaryDirectory()
folder = pathlib.Path(args.keep or tmp.name)
folder.mkdir(parents=True, exist_ok=True)
merged_file, lora_file = folder / "smollm2-merged-Q8_0.gguf", folder / "smollm2-sample-lora.gguf"

writer = GGUFWriter(merged_file, arch)
copy_metadata(reader, writer)
report = {}
for tensor in reader.tensors:
    qtype = T(tensor.tensor_type)
    if tensor.name not in pairs:
        writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=qtype)
        continue
    a, b = pairs.pop(tensor.name)
    w = dequantize(np.asarray(tensor.data), qtype).astype(np.float32)
    assert w.shape == (b.shape[0], a.shape[1]), (tensor.name, w.shape, a.shape, b.shape)
    delta = scale * (b @ a)
    merged = w + delta
    q = quantize(merged, T.Q8_0)
    raw = q.tobytes()
    unfused = np.zeros_like(w)
    for k in range(a.shape[0]):
        unfused = unfused + b[:, k:k + 1] * a[k:k + 1, :]
    raw_unfused = quantize(w + scale * unfused, T.Q8_0).tobytes()
    entry = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw), "head": raw[:64].hex(),
             "base_type": qtype.name, "shape": list(w.shape),
             "max_delta": float(np.abs(merged - w).max()),
             "max_change": float(np.abs(dequantize(q, T.Q8_0) - w).max())}
    if raw_unfused != raw:
        entry["sha256_unfused"] = hashlib.sha256(raw_unfused).hexdigest()
    report[tensor.name] = entry
    writer.add_tensor(tensor.name, q, raw_dtype=T.Q8_0)
    print(f"{tensor.name}: {qtype.name} → Q8_0, max |M − W| {entry['max_delta']:.4g}, "
          f"max |dq(Q8_0(M)) − W| {entry['max_change']:.4g}, unfused {'same' if raw_unfused == raw else 'DIFFERENT'}")
assert not pairs, f"adapter tensors without a base tensor: {sorted(pairs)}"
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

# The merged file read back: every key and every other tensor as in the base.
check = GGUFReader(merged_file)
assert [f for f in check.fields if not f.startswith("GGUF.")] == [f for f in reader.fields if not f.startswith("GGUF.")]
for key in reader.fields:
    if not key.startswith("GGUF."):
        assert check.fields[key].contents() == reader.fields[key].contents(), key
for old, new in zip(reader.tensors, check.tensors):
    assert old.name == new.name and list(old.shape) == list(new.shape)
    if old.name not in report:
        assert old.tensor_type == new.tensor_type and bytes(old.data) == bytes(new.data), old.name
    else:
        assert T(new.tensor_type) == T.Q8_0 and hashlib.sha256(bytes(new.data)).hexdigest() == report[old.name]["sha256"]
print(f"wrote {merged_file} ({merged_file.stat().st_size} bytes), read back: metadata and untouched tensors identical")

# The same adapter as a LoRA GGUF for llama.cpp's lora_path.
lora = GGUFWriter(lora_file, arch)
lora.add_string("general.type", "adapter")
lora.add_string("adapter.type", "lora")
lora.add_float32("adapter.lora.alpha", float(alpha if not config.get("use_rslora") else scale * rank))
for name, (a, b) in adapter_pairs(adapter_dir, heads, heads_kv).items():
    lora.add_tensor(f"{name}.lora_a", a)
    lora.add_tensor(f"{name}.lora_b", b)
lora.write_header_to_file()
lora.write_kv_data_to_file()
lora.write_tensors_to_file()
lora.close()

csv.field_size_limit(sys.maxsize)
with open(data, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))[:ITEMS]


def run(model, lora_path=None):
    llm = Llama(model_path=str(model), lora_path=lora_path and str(lora_path), n_ctx=4096, n_batch=4096,
                n_threads=2, n_threads_batch=2, verbose=False)
    answer_ids = [llm.tokenize(str(d).encode(), add_bos=False, special=True)[0] for d in range(1, 6)]
    cases = []
    for row in rows:
        choices = choice_count(row)
        tokens = llm.tokenize(TEMPLATES["chatml"](user_prompt(row)).encode(), add_bos=False, special=True)
        assert len(tokens) <= 4096, row["id"]
        llm.reset()
        llm.eval(tokens)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        cases.append({"id": row["id"], "tokens": len(tokens), "choices": choices,
                      "answer_logits": [float(logits[i]) for i in answer_ids[:choices]]})
        print(f"\r{model.name}{' + LoRA' if lora_path else ''}: {len(cases)}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    del llm
    return answer_ids, cases


answer_ids, merged_cases = run(merged_file)
_, base_cases = run(base_file)
_, lora_cases = run(base_file, lora_file)
tmp.cleanup()


def spread(x, y):
    d = np.array([abs(p - q) for u, v in zip(x, y) for p, q in zip(u["answer_logits"], v["answer_logits"])])
    same = sum(int(np.argmax(u["answer_logits"])) == int(np.argmax(v["answer_logits"])) for u, v in zip(x, y))
    return f"|Δ| median {np.median(d):.4f}, max {d.max():.4f}, same answer {same}/{len(x)}"


print("merged vs base:", spread(merged_cases, base_cases))
print("merged vs lora:", spread(merged_cases, lora_cases))
print("lora   vs base:", spread(lora_cases, base_cases))
result = {"base_model": base_file.name, "adapter": "adapters/smollm2-sample", "type": "Q8_0", "scale": float(scale),
          "formula": "M = W + scale*(B @ A) in float32 (numpy matmul, then scale, then sum); Q8_0 by gguf.quants.quantize; "
                     "q/k rows of B permuted to llama.cpp order",
          "data": data.name, "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "template": "chatml",
          "answer_ids": answer_ids, "tensors": report, "merged": merged_cases, "base": base_cases, "lora": lora_cases}
out.write_text(json.dumps(result, indent=1) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
