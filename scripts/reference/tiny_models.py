#!/usr/bin/env python3
"""Tiny random models of every supported family (llama, qwen2, gemma2, gemma3) and
their logits by Hugging Face transformers in float32 (pip install torch transformers
gguf accelerate).

Weights come from a 32-bit linear congruential generator that the Swift test repeats
(x = 1664525·x + 1013904223 mod 2^32; w = offset + scale·(2·x/2^32 − 1)), so only the
recipe and the expected logits are committed: the test writes the same GGUF with our
own writer. Each model is written with the gguf package, loaded by transformers
(AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)) and run on 24 tokens;
the fixture keeps all logits of the last position.

Regenerate from the repository root:   python3 scripts/reference/tiny_models.py
"""
import json
import pathlib
import tempfile

import numpy as np
import torch
from gguf import GGUFWriter
from transformers import AutoModelForCausalLM

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Tests/EngineTests/Fixtures/tiny_models.json"
V = 96
TOKENS = [(7 * i + 3) % V for i in range(24)]


def lcg(seed, count, scale, offset):
    x, values = seed, np.empty(count, dtype=np.float64)
    for i in range(count):
        x = (1664525 * x + 1013904223) % 4294967296
        values[i] = offset + scale * (2 * x / 4294967296 - 1)
    return values.astype(np.float32)


def family(arch, d, heads, kv, head_dim, ff, layers, extra_keys, norms_after=False, qk_norm=False, bias=False):
    keys = [("context_length", "u32", 128), ("embedding_length", "u32", d), ("feed_forward_length", "u32", ff),
            ("block_count", "u32", layers), ("attention.head_count", "u32", heads), ("attention.head_count_kv", "u32", kv),
            ("attention.key_length", "u32", head_dim), ("attention.value_length", "u32", head_dim),
            ("attention.layer_norm_rms_epsilon", "f32", 1e-6), ("rope.freq_base", "f32", 10000.0)] + extra_keys
    tensors = [("token_embd.weight", [d, V], 0.5, 0.0), ("output_norm.weight", [d], 0.2, 1.0)]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", [d], 0.2, 1.0), (p + "attn_q.weight", [d, heads * head_dim], 0.2, 0.0),
                    (p + "attn_k.weight", [d, kv * head_dim], 0.2, 0.0), (p + "attn_v.weight", [d, kv * head_dim], 0.2, 0.0),
                    (p + "attn_output.weight", [heads * head_dim, d], 0.2, 0.0), (p + "ffn_norm.weight", [d], 0.2, 1.0),
                    (p + "ffn_gate.weight", [d, ff], 0.2, 0.0), (p + "ffn_up.weight", [d, ff], 0.2, 0.0),
                    (p + "ffn_down.weight", [ff, d], 0.2, 0.0)]
        if bias:
            tensors += [(p + "attn_q.bias", [heads * head_dim], 0.1, 0.0), (p + "attn_k.bias", [kv * head_dim], 0.1, 0.0),
                        (p + "attn_v.bias", [kv * head_dim], 0.1, 0.0)]
        if qk_norm:
            tensors += [(p + "attn_q_norm.weight", [head_dim], 0.2, 1.0), (p + "attn_k_norm.weight", [head_dim], 0.2, 1.0)]
        if norms_after:
            tensors += [(p + "post_attention_norm.weight", [d], 0.2, 1.0), (p + "post_ffw_norm.weight", [d], 0.2, 1.0)]
    return {"architecture": arch, "keys": [[f"{arch}.{k}", t, v] for k, t, v in keys],
            "tensors": [[name, dims, index + 1, scale, offset] for index, (name, dims, scale, offset) in enumerate(tensors)]}


FAMILIES = [
    family("llama", 64, 4, 2, 16, 128, 2, [("rope.dimension_count", "u32", 16)]),
    family("qwen2", 64, 4, 2, 16, 128, 2, [], bias=True),
    family("gemma2", 64, 1, 1, 256, 128, 2, [("attention.sliding_window", "u32", 8), ("attn_logit_softcapping", "f32", 50.0),
                                             ("final_logit_softcapping", "f32", 30.0)], norms_after=True),
    family("gemma3", 64, 1, 1, 256, 128, 6, [("attention.sliding_window", "u32", 8)], norms_after=True, qk_norm=True),
]

def write_gguf(spec, path):
    """The tiny model of `spec` as a GGUF file (the Swift tests write the same bytes'
    worth of weights with our own writer)."""
    writer = GGUFWriter(str(path), spec["architecture"])
    for key, kind, value in spec["keys"]:
        {"u32": writer.add_uint32, "f32": writer.add_float32}[kind](key, value)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<t{i}>" for i in range(V)])
    writer.add_token_scores([0.0] * V)
    writer.add_token_types([1] * V)
    for tensor, dims, seed, scale, offset in spec["tensors"]:
        count = int(np.prod(dims))
        writer.add_tensor(tensor, lcg(seed, count, scale, offset).reshape(list(reversed(dims))))
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()


def load(folder, name):
    """The GGUF file as a transformers model in float32."""
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    return model


def last_logits(model):
    with torch.no_grad():
        return model(torch.tensor([TOKENS])).logits[0, -1].tolist()


def save_random_adapter(folder, spec, settings, adapter, seed):
    """Writes the tiny model of `spec` into `folder` and a PEFT adapter on it with random
    A and B (init_lora_weights=False, torch seeded) into `adapter`; returns the GGUF's
    file name. The adapter names its base as a user would, not the temporary folder."""
    from peft import LoraConfig, get_peft_model
    name = f"tiny-{spec['architecture']}.gguf"
    write_gguf(spec, f"{folder}/{name}")
    torch.manual_seed(seed)
    config = LoraConfig(r=settings["r"], lora_alpha=settings["lora_alpha"], target_modules=settings["target_modules"],
                        use_rslora=settings["use_rslora"], lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(load(folder, name), config).save_pretrained(adapter)
    config_file = adapter / "adapter_config.json"
    config_file.write_text(config_file.read_text().replace(folder, name.removesuffix(".gguf")))
    return name


if __name__ == "__main__":
    result = {"tokens": TOKENS, "vocabulary": V, "models": []}
    with tempfile.TemporaryDirectory() as folder:
        for spec in FAMILIES:
            name = f"tiny-{spec['architecture']}.gguf"
            write_gguf(spec, f"{folder}/{name}")
            model = load(folder, name)
            logits = last_logits(model)
            result["models"].append({**spec, "logits": logits})
            print(spec["architecture"], type(model).__name__, [round(x, 4) for x in logits[:4]])
    out.write_text(json.dumps(result) + "\n")
    print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
