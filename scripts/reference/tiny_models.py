#!/usr/bin/env python3
"""Tiny random models of every supported family (llama, qwen2, gemma2, gemma3, exaone, exaone4,
qwen3), their logits by Hugging Face transformers in float32 (`logits`) and by llama.cpp through
llama-cpp-python (`llama_logits`).

Weights come from a 32-bit linear congruential generator that the Swift test repeats
(x = 1664525·x + 1013904223 mod 2^32; w = offset + scale·(2·x/2^32 − 1)), so only the
recipe and the expected logits are committed: the test writes the same GGUF with our
own writer. Each model is written with the gguf package and run on 24 tokens; the fixture
keeps all logits of the last position:
  - `logits`: transformers in float32. llama, qwen2, gemma2, gemma3 and qwen3 are loaded with
    AutoModelForCausalLM.from_pretrained(folder, gguf_file=...) (qwen3 with head_dim passed, as
    transformers' GGUF reader ignores key_length); transformers cannot read exaone or exaone4
    GGUF files, so those are built from a config (ExaoneConfig, which transformers runs as
    LlamaForCausalLM, and Exaone4Config) and the GGUF tensors are loaded under their Hugging
    Face names, without any q/k permutation (both use NEOX RoPE on the Hugging Face layout).
  - `llama_logits`: llama.cpp on the same F32 file and the same token ids (no BOS), F32 KV
    cache, one thread.
Committed `logits` are kept when the regenerated ones are within 1e-5 of them.

exaone4 has 64 layers because the llama.cpp below turns on EXAONE 4's local/global
attention only for block_count == 64 (layers il % 4 == 3 global and without RoPE, the
others in a window of exaone4.attention.sliding_window = 8 tokens, with RoPE); with any
other block count it runs every layer global with RoPE.

Versions used: Python 3.11.7, torch 2.15.0 (CPU wheel), transformers 5.24.0, peft 0.21.2,
accelerate 1.15.0, safetensors 0.8.0, gguf 0.19.0, llama-cpp-python 0.3.36, numpy 2.4.6
(pip install torch --index-url https://download.pytorch.org/whl/cpu; pip install transformers
peft accelerate safetensors gguf==0.19.0 llama-cpp-python==0.3.36).

Regenerate from the repository root:   python3 scripts/reference/tiny_models.py
"""
import json
import pathlib
import tempfile

import numpy as np
import torch
from gguf import GGUFWriter
from transformers import AutoModelForCausalLM

from generator import lcg

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Tests/EngineTests/Fixtures/tiny_models.json"
V = 96
TOKENS = [(7 * i + 3) % V for i in range(24)]




def family(arch, d, heads, kv, head_dim, ff, layers, extra_keys, norms_after=False, qk_norm=False, bias=False,
           norms_before=True):
    keys = [("context_length", "u32", 128), ("embedding_length", "u32", d), ("feed_forward_length", "u32", ff),
            ("block_count", "u32", layers), ("attention.head_count", "u32", heads), ("attention.head_count_kv", "u32", kv),
            ("attention.key_length", "u32", head_dim), ("attention.value_length", "u32", head_dim),
            ("attention.layer_norm_rms_epsilon", "f32", 1e-6), ("rope.freq_base", "f32", 10000.0)] + extra_keys
    tensors = [("token_embd.weight", [d, V], 0.5, 0.0), ("output_norm.weight", [d], 0.2, 1.0)]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", [d], 0.2, 1.0)] if norms_before else []
        tensors += [(p + "attn_q.weight", [d, heads * head_dim], 0.2, 0.0),
                    (p + "attn_k.weight", [d, kv * head_dim], 0.2, 0.0), (p + "attn_v.weight", [d, kv * head_dim], 0.2, 0.0),
                    (p + "attn_output.weight", [heads * head_dim, d], 0.2, 0.0)]
        tensors += [(p + "ffn_norm.weight", [d], 0.2, 1.0)] if norms_before else []
        tensors += [(p + "ffn_gate.weight", [d, ff], 0.2, 0.0), (p + "ffn_up.weight", [d, ff], 0.2, 0.0),
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
    # EXAONE 3.x: llama's layout, but NEOX RoPE on unpermuted q and k (llama.cpp's converter does not permute them).
    family("exaone", 64, 4, 2, 16, 128, 2, [("rope.dimension_count", "u32", 16)]),
    # EXAONE 4.0: no pre-norms, post-norms after attention and FFN, QK-norm. llama.cpp turns on its local/global
    # pattern only when block_count == 64 (layers with il % 4 == 3 global, without RoPE; the others in a window).
    family("exaone4", 64, 4, 2, 16, 128, 64, [("attention.sliding_window", "u32", 8)], norms_after=True, qk_norm=True,
           norms_before=False),
    family("qwen3", 64, 4, 2, 16, 128, 2, [], qk_norm=True),
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


# GGUF tensor names (after "blk.N.") → Hugging Face module names, for the families whose GGUF transformers
# cannot load (exaone, exaone4). No q/k row permutation: llama.cpp's converter permutes q and k only for
# llama-style (normal RoPE) architectures, and EXAONE 3 and 4 use NEOX RoPE on the Hugging Face layout.
HF_NAMES = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
            "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj", "post_ffw_norm": "post_feedforward_layernorm"}


def read_gguf(path):
    """(architecture, {key without the architecture: value}, {tensor name: float32 array in numpy's
    (rows, columns) order, i.e. Hugging Face's (out, in)})."""
    from gguf import GGUFReader
    reader = GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    keys = {k.removeprefix(arch + "."): f.contents() for k, f in reader.fields.items() if k.startswith(arch + ".")}
    tensors = {t.name: np.array(t.data, dtype=np.float32).reshape([int(n) for n in reversed(t.shape)]) for t in reader.tensors}
    return arch, keys, tensors


def build(path):
    """EXAONE 3 (transformers' ExaoneConfig, which runs LlamaForCausalLM) or EXAONE 4 (Exaone4ForCausalLM)
    from a config made from the GGUF's keys, with the GGUF's tensors loaded under Hugging Face names."""
    from transformers import AutoConfig
    arch, keys, tensors = read_gguf(path)
    layers = keys["block_count"]
    common = dict(vocab_size=V, hidden_size=keys["embedding_length"], intermediate_size=keys["feed_forward_length"],
                  num_hidden_layers=layers, num_attention_heads=keys["attention.head_count"],
                  num_key_value_heads=keys["attention.head_count_kv"], rms_norm_eps=keys["attention.layer_norm_rms_epsilon"],
                  max_position_embeddings=keys["context_length"], tie_word_embeddings="output.weight" not in tensors,
                  rope_parameters={"rope_type": "default", "rope_theta": keys["rope.freq_base"]})
    if arch == "exaone":
        config = AutoConfig.for_model("exaone", head_dim=keys["attention.key_length"], **common)
        post_attention = "post_attention_layernorm"  # blk.N.ffn_norm: the pre-FFN norm, named so by Llama
    elif arch == "exaone4":
        # llama.cpp (src/models/exaone4.cpp) uses its window and the local/global pattern only when block_count
        # is 64; with any other count every layer is global and uses RoPE, which is sliding_window=None here.
        window = keys.get("attention.sliding_window", 4096) if layers == 64 else None
        pattern = keys.get("attention.sliding_window_pattern", 4)
        # (Exaone4Config divides by a pattern of 0 when sliding_window is None: the layer types are given then.)
        types = None if window else ["full_attention"] * layers
        config = AutoConfig.for_model("exaone4", sliding_window=window, sliding_window_pattern=pattern, layer_types=types,
                                      **common)
        post_attention = None
    else:
        raise ValueError(f"no loader for {arch}")
    config._name_or_path = str(pathlib.Path(path).parent)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    state = {}
    for name, array in tensors.items():
        if name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            hf = "model.norm.weight"
        elif name == "output.weight":
            hf = "lm_head.weight"
        else:
            _, block, base, kind = name.split(".")
            if base == "ffn_norm":
                module = post_attention
            elif base == "post_attention_norm":
                module = "post_attention_layernorm"
            else:
                module = HF_NAMES[base]
            hf = f"model.layers.{block}.{module}.{kind}"
        state[hf] = torch.from_numpy(array.copy())
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model.tie_weights()
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight) or "output.weight" in tensors
    return model


def load(folder, name):
    """The GGUF file as a transformers model in float32: through gguf_file= where transformers reads the
    architecture's GGUF (llama, qwen2, gemma2, gemma3, qwen3), else built by `build`."""
    from gguf import GGUFReader
    arch = GGUFReader(f"{folder}/{name}").fields["general.architecture"].contents()
    if arch in ("exaone", "exaone4"):
        model = build(f"{folder}/{name}")
    elif arch == "qwen3":
        # transformers' GGUF reader maps no key to Qwen3's head_dim (its default is 128): pass key_length.
        head_dim = read_gguf(f"{folder}/{name}")[1]["attention.key_length"]
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32, head_dim=head_dim)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    return model


def llama_logits(path, tokens=TOKENS):
    """llama.cpp's (llama-cpp-python's) logits of the last position, F32 KV cache, one thread, no BOS."""
    from llama_cpp import Llama
    llm = Llama(model_path=str(path), n_ctx=128, n_batch=len(tokens), n_ubatch=len(tokens), n_threads=1,
                n_threads_batch=1, type_k=0, type_v=0, verbose=False)  # 0: GGML_TYPE_F32
    llm.eval(tokens)
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64).tolist()
    llm.close()
    return logits


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
    # Committed transformers logits are kept when the new ones are within KEEP of them (torch's kernels vary in
    # the last bits between versions), so that regenerating changes only what changed.
    KEEP = 1e-5
    committed = {m["architecture"]: m for m in json.loads(out.read_text())["models"]} if out.exists() else {}
    result = {"tokens": TOKENS, "vocabulary": V, "models": []}
    with tempfile.TemporaryDirectory() as folder:
        for spec in FAMILIES:
            arch = spec["architecture"]
            name = f"tiny-{arch}.gguf"
            write_gguf(spec, f"{folder}/{name}")
            model = load(folder, name)
            logits = last_logits(model)
            reference = llama_logits(f"{folder}/{name}")
            old = committed.get(arch)
            note = ""
            if old and old.get("logits") and old["keys"] == spec["keys"] and old["tensors"] == spec["tensors"]:
                change = max(abs(a - b) for a, b in zip(logits, old["logits"]))
                note = f", largest change from the committed logits {change:.2e}"
                if change <= KEEP:
                    logits = old["logits"]
                    note += " (kept)"
            result["models"].append({**spec, "logits": logits, "llama_logits": reference})
            gap = max(abs(a - b) for a, b in zip(logits, reference))
            print(f"{arch}: {type(model).__name__}, largest |llama.cpp - transformers| {gap:.2e}, largest logit "
                  f"{max(map(abs, logits)):.3f}{note}")
    out.write_text(json.dumps(result) + "\n")
    print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
