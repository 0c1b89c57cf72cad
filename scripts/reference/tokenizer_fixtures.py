#!/usr/bin/env python3
"""Reference tokenizations by llama.cpp (pip install llama-cpp-python==0.3.36).

Writes Tests/TokenizerTests/Fixtures/tokenizer_reference.json: for both default models,
the token ids of
- 50 real items of ../shared/data (25 train, 25 test, every 30th/17th id), each as three
  strings: the paragraph, the baseline user prompt, and the whole prompt in the model's
  chat template (DESIGN.md) - stored by item id and variant, never the item text, and
  their ids as count, first 16 and sha256 of the comma-joined ids (to keep this small);
- hand-written edge cases (empty, whitespace runs, digits, emoji, mixed scripts, quotes,
  the special tokens), stored in full.
Each string is tokenized as Llama(..., vocab_only=True).tokenize(text, add_bos=False,
special=True); the edge cases also with add_bos=True.
The pre-tokenizers the default models do not use (llama-bpe, qwen2, default) are checked
on the edge cases through vocabulary-only copies of SmolLM2 whose tokenizer.ggml.pre is
changed (the Swift test writes the same copies with its own GGUF writer).

Regenerate from the repository root, with the models fetched (make models) and
../shared/data present:   python3 scripts/reference/tokenizer_fixtures.py
"""
import csv
import hashlib
import json
import os
import pathlib
import sys

from llama_cpp import Llama
from prompts import TEMPLATES, user_prompt

root = pathlib.Path(__file__).resolve().parents[2]
data = root.parent / "shared" / "data"
models = pathlib.Path(os.environ.get("SUNEUNG_MODELS", pathlib.Path.home() / ".cache/suneung/models"))
out = root / "Tests/TokenizerTests/Fixtures/tokenizer_reference.json"

MODELS = {"gemma-3-270m-q4_k_m.gguf": "gemma", "SmolLM2-135M-Instruct.Q4_1.gguf": "chatml"}

csv.field_size_limit(sys.maxsize)
items = []
for name, step in [("train.csv", 30), ("test.csv", 17)]:
    with open(data / name, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    items += [(name, row) for row in rows[::step][:25]]

EDGE = [
    "", " ", "  ", "   ", "    x", "x    ", "\n", "\n\n", "\n\n\n", " \n ", "\t", "a\tb", "\r\n", "a\r\nb", "line1\nline2\n\nline4",
    "0", "1", "12", "123", "1234", "1234567", "3.14159", "1,000,000", "-42", "2024년 11월 24일", "12:30", "1 - 가", "정답:", "정답: 3",
    "1, 2, 3, 4, 5 중에 하나를 정답으로 고르세요.", "선택지:\n1 - 가\n2 - 나", "①②③④⑤", "㉠㉡㉢", "ㄱ.ㄴ.ㄷ.ㄹ", "ㄱ, ㄴ", "(가)", "[A]", "<보기>",
    "‘작은따옴표’", "“큰따옴표”", "\"ascii quotes\"", "'single'", "don't", "I'LL", "she's", "'s", "we've", "THEY'RE",
    "漢字", "喪服", "傳重", "상복(喪服) 절차", "세종(世宗)", "Hello 안녕 世界", "mixed한글English123", "café", "naïve", "Ελληνικά", "русский", "العربية",
    "😀", "👍🏽", "🇰🇷", "👨‍👩‍👧", "a😀b", "☺", "★☆", "→←", "…", "—", "–", "·", "※", "℃", "㎞", "％", "＄", "１２３", "ＡＢＣ",
    "\u00a0", "a\u00a0b", "\u3000", "a\u3000b", "\u200b", "zero\u200bwidth", "tab\t\ttabs", "   leading", "trailing   ", "a  b", "a   b", "a    b",
    "<start_of_turn>", "<end_of_turn>", "<start_of_turn>user\n안녕<end_of_turn>\n<start_of_turn>model\n", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
    "<|im_start|>", "<|im_end|>", "<|im_start|>system\n지시<|im_end|>\n", "<|endoftext|>", "a<|im_end|>b", "<bos><bos>", "<start_of_turn><end_of_turn>",
    "<0x41>", "▁", "▁▁", "<unused0>", "[multimodal]", "<not a token>", "<<>>", "<|", "|>", "</s>", "<s>",
    "상소하여 아뢰기를 , “신이 좌참 찬 송준길이 올린 차자를 보았는데 ,", "－현종실록 －ㄱ.기 사환국으로", "(가 ),  (나 )를 읽은 학생이",
    "독서는   필자와 간접적으로 대화하는 소통 행위이다 .", "ㅋㅋㅋㅋ", "ㅎㅎ", "헐", "뷁", "똠방각하", "\uac00\u11a8", "\u1100\u1161\u11a8",
    "x" * 100, "가" * 60, " " * 40, "\n" * 33, "9" * 20, "ab" * 30, "한 글 자 씩", "띄어쓰기없는한국어문장입니다", "word " * 20,
    "https://example.com/path?q=1&r=2", "user@example.com", "C++", "#include <stdio.h>", "x = y + 1;", "f(x) = x^2", "E=mc²", "H₂O", "α+β=γ",
    "$100", "€50", "¥1000", "₩10,000", "50%", "#해시태그", "@멘션", "~물결~", "***", "---", "___", "...", "!!!", "???", "?!", "(괄호)", "[대괄호]", "{중괄호}",
    "Ⅰ. 서론", "ⅱ", "º", "ª", "½", "¼", "x²", "µ", "Å", "ß", "İstanbul", "ǅ", "ﬁ", "ﬀ", "Ⓐ", "🄰",
]

result = {"items": [], "edge": [], "models": {}}
for name, row in items:
    for variant in ["paragraph", "user", "chat"]:
        result["items"].append({"file": name, "id": row["id"], "variant": variant})
result["edge"] = EDGE

for file, template in MODELS.items():
    llm = Llama(model_path=str(models / file), vocab_only=True, verbose=False)
    ids = []
    for name, row in items:
        user = user_prompt(row)
        for text in [row["paragraph"], user, TEMPLATES[template](user)]:
            tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
            ids.append({"count": len(tokens), "head": tokens[:16],
                        "sha256": hashlib.sha256(",".join(map(str, tokens)).encode()).hexdigest()})
    edge_ids = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in EDGE]
    edge_bos = [llm.tokenize(t.encode(), add_bos=True, special=True) for t in EDGE]
    edge_plain = [llm.tokenize(t.encode(), add_bos=False, special=False) for t in EDGE]
    result["models"][file] = {"template": template, "items": ids, "edge": edge_ids, "edge_add_bos": edge_bos, "edge_no_special": edge_plain}
    print(f"{file}: {len(ids)} item strings, {len(EDGE)} edge cases")

from gguf import GGUFReader, GGUFValueType, GGUFWriter
import tempfile


def vocabulary_copy(source, path, key, value):
    """A vocabulary-only copy of a model's metadata with one key changed."""
    writer = GGUFWriter(path, source.fields["general.architecture"].contents())
    for name, field in source.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        contents = value if name == key else field.contents()
        if field.types[0] == GGUFValueType.ARRAY:
            writer.add_key_value(name, contents, field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(name, contents, field.types[0])
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
    return Llama(model_path=path, vocab_only=True, verbose=False)


smol = GGUFReader(models / "SmolLM2-135M-Instruct.Q4_1.gguf")
result["pretokenizers"] = {}
with tempfile.TemporaryDirectory() as folder:
    for pre in ["llama-bpe", "qwen2", "default"]:
        llm = vocabulary_copy(smol, f"{folder}/vocab-{pre}.gguf", "tokenizer.ggml.pre", pre)
        result["pretokenizers"][pre] = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in EDGE]
        print(f"pre-tokenizer {pre}: {len(EDGE)} edge cases")
    # SentencePiece's add_space_prefix, which Gemma leaves off.
    llm = vocabulary_copy(GGUFReader(models / "gemma-3-270m-q4_k_m.gguf"), f"{folder}/gemma-space.gguf", "tokenizer.ggml.add_space_prefix", True)
    result["space_prefix"] = [llm.tokenize(t.encode(), add_bos=True, special=True) for t in EDGE]
    print(f"add_space_prefix: {len(EDGE)} edge cases")

out.write_text(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
print(f"wrote {out.relative_to(root)} ({out.stat().st_size} bytes), {len(result['items']) + len(EDGE)} strings per model")
