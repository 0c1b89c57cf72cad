#!/usr/bin/env bash
# Prints the path of llama.cpp's server (llama-server), built once per machine from the
# llama.cpp that llama-cpp-python 0.3.36 vendors (the sources of the package the
# references use), for the tests of `predict --endpoint`. Cached outside the repository;
# the first build takes 15-25 minutes on two cores. Static, and native to this CPU.
set -euo pipefail
version=0.3.36
cache="${SUNEUNG_CACHE:-$HOME/.cache/suneung}/llama-server/$version"
binary="$cache/llama-server"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
command -v cmake >/dev/null || { echo "error: cmake is missing (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Building llama-server from llama-cpp-python $version's llama.cpp, once (15-25 minutes on two cores)" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet scikit-build-core
"$work/venv/bin/pip" download --quiet --no-deps --no-binary :all: --no-build-isolation -d "$work" "llama-cpp-python==$version"
tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
cmake -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF >&2
cmake --build "$work/build" --target llama-server -j"$(nproc)" >&2
mkdir -p "$cache"
cp "$work/build/bin/llama-server" "$binary.partial"
mv "$binary.partial" "$binary"
echo "$binary"
