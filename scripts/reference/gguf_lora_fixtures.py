#!/usr/bin/env python3
"""llama.cpp's LoRA adapter GGUF format (general.type = adapter, adapter.type = lora,
adapter.lora.alpha; tensors blk.N.NAME.weight.lora_a of ggml dims [in, r] and .lora_b of
[r, out]) as llama.cpp's own converter writes it, and llama.cpp's logits with it, for the
Swift tests of our GGUF LoRA import and export.

Writes:
  - Tests/EngineTests/Fixtures/adapters/smollm2-sample.lora.gguf: the committed PEFT adapter
    adapters/smollm2-sample (r 2, alpha 4, q_proj, v_proj and down_proj of layers 0, 15, 29,
    F16) converted by llama.cpp's convert_lora_to_gguf.py --outtype f32. SmolLM2 is a
    llama-architecture model, so the converter permutes the rows of q's lora_b (and k's) into
    llama.cpp's RoPE order (within each head, row 2i + j of the GGUF is row j·head_dim/2 + i
    of Hugging Face's).
  - Tests/EngineTests/Fixtures/adapters/tiny-ARCH.lora.gguf: the same conversion of the tiny
    adapters of lora_fixtures.py (every family of tiny_models.FAMILIES).
  - Tests/EngineTests/Fixtures/gguf_lora.json:
      "smollm2": the model file, its chat template (chatml), the adapter folder and converted
        file, the answer token ids of "1".."5", the sha256 of the real data and, for the first
        30 items of ../shared/data/train.csv (the baseline prompt in the chat template,
        tokenized as engine_peer_fixtures.py does: no BOS added, special tokens parsed), the id,
        token count, choice count and the last-position logits of the five answer tokens by
        llama.cpp without the adapter (`answer_logits`) and with the converted adapter at scale
        1 (`answer_logits_lora`); llama.cpp's default KV cache (F16), as the peer fixtures.
      "smollm2"."file" and "tiny"[i]."file": the converted file field by field: its size, GGUF
        version, tensor and key counts, alignment, data offset, metadata (every key but GGUF.*),
        adapter.lora.alpha, and for each tensor in file order its
        name, ggml dims (ne0 first), type and the sha256 of its data bytes.
      "tiny": per family the adapter folder, converted file, PEFT settings (r, lora_alpha,
        use_rslora), llama.cpp's last-position logits on tiny_models.TOKENS (F32 KV cache, one
        thread, no BOS) without the adapter (`llama_logits`), with the converted file at scale 1
        (`llama_logits_lora`) and, where the adapter uses rsLoRA, at scale sqrt(r)
        (`llama_logits_lora_rslora`, see below), and the largest difference from transformers +
        PEFT (tiny_adapters.json) of each.

The converter needs the base model's Hugging Face config folder (config.json only: its
LoraModel skips the vocabulary); there is no network, so one is made in a temporary folder
from the GGUF's metadata (SMOLLM2_CONFIG; hf_config for the tiny models, whose GGUFs are
written with tiny_models.write_gguf). The converter ignores use_rslora: it writes PEFT's
lora_alpha as adapter.lora.alpha, and llama.cpp scales by alpha / r, so an rsLoRA adapter
(scale alpha / sqrt(r)) converted so is off by sqrt(r); llama.cpp at lora_scale sqrt(r) gives
PEFT's scale. The converter also fills general.name, general.base_model.* and general.tags from
the adapter folder's name and README.md model card.

llama.cpp's converter is not committed. It ships in llama-cpp-python's source distribution:
    pip download llama-cpp-python==0.3.36 --no-binary llama-cpp-python --no-deps -d DL
    tar xzf DL/llama_cpp_python-0.3.36.tar.gz -C DL
(--no-binary :all: would also build cmake and ninja from source, for minutes), and point SUNEUNG_LLAMA_CPP (or --llama-cpp)
at its vendor/llama.cpp folder (the one holding convert_lora_to_gguf.py, conversion/ and
gguf-py/; the converter uses that gguf-py, not the installed gguf).

Regenerate from the repository root (models in ~/.cache/suneung/models or SUNEUNG_MODELS; the
real data in ../shared/data or SUNEUNG_DATA):
    SUNEUNG_LLAMA_CPP=DL/llama_cpp_python-0.3.36/vendor/llama.cpp python3 scripts/reference/gguf_lora_fixtures.py

Versions used: Python 3.11.7, llama-cpp-python 0.3.36 (sdist sha256
832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e, its vendor/llama.cpp
converter), gguf 0.19.0 (the converter's own gguf-py for writing), torch 2.15.0, transformers 5.24.0, peft 0.21.2, safetensors 0.8.0,
numpy 2.4.6.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from prompts import TEMPLATES, choice_count, user_prompt

root = pathlib.Path(__file__).resolve().parents[2]
fixtures = root / "Tests/EngineTests/Fixtures"
out = fixtures / "gguf_lora.json"
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
data = pathlib.Path(os.environ.get("SUNEUNG_DATA", root.parent / "shared/data")) / "train.csv"
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
ITEMS = 30

# SmolLM2-135M(-Instruct) as Hugging Face's config.json has it; sizes as in the GGUF's llama.* keys.
SMOLLM2_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
                  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                  "head_dim": 64, "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "max_position_embeddings": 8192,
                  "vocab_size": 49152, "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 1,
                  "eos_token_id": 2, "torch_dtype": "bfloat16"}
SMOLLM2_KEYS = {"block_count": 30, "embedding_length": 576, "feed_forward_length": 1536, "attention.head_count": 9,
                "attention.head_count_kv": 3, "vocab_size": 49152, "context_length": 8192, "rope.freq_base": 100000.0}

# Hugging Face class and model_type of each tiny family, and the keys its config needs beyond the common ones.
TINY_CLASSES = {"llama": ("LlamaForCausalLM", "llama"), "qwen2": ("Qwen2ForCausalLM", "qwen2"),
                "gemma2": ("Gemma2ForCausalLM", "gemma2"), "gemma3": ("Gemma3ForCausalLM", "gemma3_text"),
                "exaone": ("ExaoneForCausalLM", "exaone"), "exaone4": ("Exaone4ForCausalLM", "exaone4"),
                "qwen3": ("Qwen3ForCausalLM", "qwen3")}


def hf_config(spec, vocabulary):
    """A Hugging Face config.json for a tiny model of tiny_models.FAMILIES, from its GGUF keys."""
    arch = spec["architecture"]
    keys = {k.removeprefix(arch + "."): v for k, _, v in spec["keys"]}
    cls, model_type = TINY_CLASSES[arch]
    config = {"architectures": [cls], "model_type": model_type, "hidden_size": keys["embedding_length"],
              "intermediate_size": keys["feed_forward_length"], "num_hidden_layers": keys["block_count"],
              "num_attention_heads": keys["attention.head_count"], "num_key_value_heads": keys["attention.head_count_kv"],
              "head_dim": keys["attention.key_length"], "rms_norm_eps": keys["attention.layer_norm_rms_epsilon"],
              "rope_theta": keys["rope.freq_base"], "max_position_embeddings": keys["context_length"],
              "vocab_size": vocabulary, "tie_word_embeddings": True, "hidden_act": "silu", "activation_function": "silu"}
    for key in ("attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"):
        if key in keys:
            config[{"attention.sliding_window": "sliding_window"}.get(key, key)] = keys[key]
    if arch == "gemma2":
        config["query_pre_attn_scalar"] = keys["attention.key_length"]
    return config


def convert(llama_cpp, adapter, config, outfile):
    """llama.cpp's convert_lora_to_gguf.py --outtype f32 on `adapter`, with `config` as the base's config.json."""
    with tempfile.TemporaryDirectory() as base:
        (pathlib.Path(base) / "config.json").write_text(json.dumps(config, indent=1))
        command = [sys.executable, str(llama_cpp / "convert_lora_to_gguf.py"), "--outtype", "f32", "--base", base,
                   "--outfile", str(outfile), str(adapter)]
        run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")


def describe(path):
    """The converted file field by field: metadata (but GGUF.*), alpha, tensors in file order."""
    from gguf import GGUFReader
    reader = GGUFReader(str(path))
    metadata = {}
    for key, field in reader.fields.items():
        if not key.startswith("GGUF."):
            value = field.contents()
            metadata[key] = float(value) if isinstance(value, (np.floating, float)) else value
    tensors = [{"name": t.name, "dims": [int(n) for n in t.shape], "type": t.tensor_type.name,
                "sha256": hashlib.sha256(np.asarray(t.data).tobytes()).hexdigest()} for t in reader.tensors]
    header = {key.removeprefix("GGUF."): int(field.contents()) for key, field in reader.fields.items()
              if key in ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")}
    return {"bytes": path.stat().st_size, **header, "alignment": reader.alignment, "data_offset": reader.data_offset,
            "alpha": metadata.get("adapter.lora.alpha"), "metadata": metadata, "tensors": tensors}


def read_tensors(path):
    from gguf import GGUFReader
    return {t.name: np.array(t.data, dtype=np.float32).reshape([int(n) for n in reversed(t.shape)])
            for t in GGUFReader(str(path)).tensors}


def check_permutation(gguf_path, adapter, head_dim, module="q_proj", gguf_name="attn_q"):
    """Asserts that the converted lora_a of `module` equals PEFT's lora_A and its lora_b equals PEFT's lora_B
    with llama.cpp's row permutation (per head: GGUF row 2i + j = HF row j·head_dim/2 + i); returns the
    layers checked."""
    from safetensors.numpy import load_file
    peft = {k: v.astype(np.float32) for k, v in load_file(adapter / "adapter_model.safetensors").items()}
    ours, layers = read_tensors(gguf_path), []
    for name, b in peft.items():
        if f".{module}.lora_B" not in name:
            continue
        layer = int(name.split(".layers.")[1].split(".")[0])
        a = peft[name.replace("lora_B", "lora_A")]
        rows = b.shape[0]
        order = [h * head_dim + j * (head_dim // 2) + i for h in range(rows // head_dim)
                 for i in range(head_dim // 2) for j in range(2)]
        assert np.array_equal(ours[f"blk.{layer}.{gguf_name}.weight.lora_a"], a), name
        assert np.array_equal(ours[f"blk.{layer}.{gguf_name}.weight.lora_b"], b[order]), name
        assert not np.array_equal(b[order], b)
        layers.append(layer)
    return sorted(layers)


def real_cases(llama_cpp_lora):
    from llama_cpp import Llama
    csv.field_size_limit(sys.maxsize)
    with open(data, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:ITEMS]
    results = []
    for lora in (None, llama_cpp_lora):
        options = dict(lora_path=str(lora), lora_scale=1.0) if lora else {}
        llm = Llama(model_path=str(models / MODEL), n_ctx=4096, n_batch=4096, n_threads=2, n_threads_batch=2,
                    verbose=False, **options)
        answer_ids = [llm.tokenize(str(d).encode(), add_bos=False, special=True)[0] for d in range(1, 6)]
        cases = []
        for row in rows:
            tokens = llm.tokenize(TEMPLATES["chatml"](user_prompt(row)).encode(), add_bos=False, special=True)
            assert len(tokens) <= 4096, (row["id"], len(tokens))
            llm.reset()
            llm.eval(tokens)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            cases.append({"id": row["id"], "tokens": len(tokens), "choices": choice_count(row),
                          "answer_logits": [float(logits[i]) for i in answer_ids]})
        llm.close()
        results.append((answer_ids, cases))
    (ids, plain), (ids_lora, adapted) = results
    assert ids == ids_lora
    for case, other in zip(plain, adapted):
        assert case["id"] == other["id"] and case["tokens"] == other["tokens"]
        case["answer_logits_lora"] = other["answer_logits"]
    return ids, plain


def tiny_logits(path, lora=None, scale=1.0):
    """llama.cpp's last-position logits on tiny_models.TOKENS (F32 KV cache, one thread, no BOS)."""
    from llama_cpp import Llama
    from tiny_models import TOKENS
    options = dict(lora_path=str(lora), lora_scale=scale) if lora else {}
    llm = Llama(model_path=str(path), n_ctx=128, n_batch=len(TOKENS), n_ubatch=len(TOKENS), n_threads=1,
                n_threads_batch=1, type_k=0, type_v=0, verbose=False, **options)  # 0: GGML_TYPE_F32
    llm.eval(TOKENS)
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64).tolist()
    llm.close()
    return logits


def tiny_entries(llama_cpp, chosen):
    from tiny_models import FAMILIES, V, write_gguf
    peft_logits = {m["architecture"]: m["logits"] for m in json.loads((fixtures / "tiny_adapters.json").read_text())["models"]}
    entries = []
    with tempfile.TemporaryDirectory() as folder:
        for spec in FAMILIES:
            arch = spec["architecture"]
            if arch not in chosen:
                continue
            adapter = fixtures / f"adapters/tiny-{arch}"
            settings = json.loads((adapter / "adapter_config.json").read_text())
            converted = fixtures / f"adapters/tiny-{arch}.lora.gguf"
            convert(llama_cpp, adapter, hf_config(spec, V), converted)
            model = pathlib.Path(folder) / f"tiny-{arch}.gguf"
            write_gguf(spec, model)
            entry = {"architecture": arch, "adapter": f"adapters/tiny-{arch}", "converted": converted.name,
                     "r": settings["r"], "lora_alpha": settings["lora_alpha"], "use_rslora": settings["use_rslora"],
                     "file": describe(converted), "llama_logits": tiny_logits(model),
                     "llama_logits_lora": tiny_logits(model, converted)}
            if arch == "llama":
                keys = {k: v for k, _, v in spec["keys"]}
                layers = check_permutation(converted, adapter, keys["llama.attention.key_length"])
                layers_k = check_permutation(converted, adapter, keys["llama.attention.key_length"], "k_proj", "attn_k")
                entry["qk_permuted_layers"] = layers
                assert layers == layers_k
            if settings["use_rslora"]:
                entry["llama_logits_lora_rslora"] = tiny_logits(model, converted, math.sqrt(settings["r"]))
            peft = peft_logits[arch]
            gaps = {key: max(abs(a - b) for a, b in zip(entry[key], peft))
                    for key in ("llama_logits", "llama_logits_lora", "llama_logits_lora_rslora") if key in entry}
            entry["largest_difference_from_peft"] = gaps
            entries.append(entry)
            print(f"tiny {arch}: alpha written {entry['file']['alpha']} (PEFT r {settings['r']}, lora_alpha "
                  f"{settings['lora_alpha']}, rsLoRA {settings['use_rslora']}), {len(entry['file']['tensors'])} tensors, "
                  f"{converted.stat().st_size} bytes; largest |llama.cpp - PEFT| "
                  + ", ".join(f"{k} {v:.2e}" for k, v in gaps.items()))
    return entries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-cpp", default=os.environ.get("SUNEUNG_LLAMA_CPP"),
                        help="llama.cpp's folder holding convert_lora_to_gguf.py (default: $SUNEUNG_LLAMA_CPP)")
    parser.add_argument("--tiny", nargs="*", default=None, help="only these tiny families (default: all)")
    parser.add_argument("--no-real", action="store_true", help="keep the committed smollm2 entry")
    args = parser.parse_args()
    if not args.llama_cpp or not (pathlib.Path(args.llama_cpp) / "convert_lora_to_gguf.py").is_file():
        sys.exit("set SUNEUNG_LLAMA_CPP (or --llama-cpp) to llama.cpp's folder with convert_lora_to_gguf.py (see --help)")
    llama_cpp = pathlib.Path(args.llama_cpp).resolve()
    committed = json.loads(out.read_text()) if out.exists() else {}
    result = {}

    if args.no_real and "smollm2" in committed:
        result["smollm2"] = committed["smollm2"]
    else:
        adapter = fixtures / "adapters/smollm2-sample"
        converted = fixtures / "adapters/smollm2-sample.lora.gguf"
        convert(llama_cpp, adapter, SMOLLM2_CONFIG, converted)
        layers = check_permutation(converted, adapter, SMOLLM2_CONFIG["head_dim"])
        answer_ids, cases = real_cases(converted)
        result["smollm2"] = {"model": MODEL, "template": "chatml", "adapter": "adapters/smollm2-sample",
                             "converted": converted.name, "lora_scale": 1.0,
                             "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "answer_ids": answer_ids,
                             "q_permuted_layers": layers, "file": describe(converted), "cases": cases}
        diffs = np.array([abs(a - b) for c in cases for a, b in zip(c["answer_logits"][:c["choices"]], c["answer_logits_lora"])])
        changed = sum(int(np.argmax(c["answer_logits"][:c["choices"]])) != int(np.argmax(c["answer_logits_lora"][:c["choices"]]))
                      for c in cases)
        print(f"smollm2: {converted.stat().st_size} bytes, alpha {result['smollm2']['file']['alpha']}, q rows permuted in "
              f"layers {layers}; answer logits with vs without the adapter: median |change| {np.median(diffs):.3f}, largest "
              f"{diffs.max():.3f}; answer changed on {changed} of {len(cases)} items")

    chosen = args.tiny if args.tiny else [arch for arch in TINY_CLASSES]
    kept = {m["architecture"]: m for m in committed.get("tiny", [])}
    fresh = {m["architecture"]: m for m in tiny_entries(llama_cpp, chosen)}
    result["tiny"] = [fresh.get(arch) or kept[arch] for arch in TINY_CLASSES if arch in fresh or arch in kept]
    out.write_text(json.dumps(result) + "\n")
    print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes)")
