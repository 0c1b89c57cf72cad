#!/usr/bin/env bash
# Installs the Debian packages the build links against, if any is missing.
# Runs apt-get as root, or through sudo when that is available. With --test, also what
# the tests use: chromium (the dashboard checked in a real browser), curl, and what
# scripts/llama-server.sh builds llama.cpp's server with (cmake, g++, python3-venv).
set -euo pipefail
packages=(libsqlite3-dev libopenblas-dev libxml2-dev libcurl4)
if [ "${1:-}" = "--test" ]; then packages+=(chromium curl cmake g++ python3-venv); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "error: ${missing[*]} missing and neither root nor sudo is available" >&2; exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift not found (expected Swift 6 at /opt/swift/usr/bin)" >&2; exit 1; }
