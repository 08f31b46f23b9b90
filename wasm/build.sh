#!/usr/bin/env bash
# WebAssembly builds (emscripten, `apt-get install emscripten`):
#   wasm/build.sh            wasm/dist/sparsedge.{mjs,wasm} from build/wasm
#                            (single-threaded, -O3, SIMD128 kernels, exceptions)
#   wasm/build.sh tests      the native C++ tests (tests/cpp) in build/wasm-tests,
#                            with pthreads (the tests compare 1 vs 2 threads),
#                            run under node by ctest
# Build directories are reused, so a second run only rebuilds what changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
what="${1:-dist}"
jobs="${JOBS:-$(nproc)}"

command -v emcmake >/dev/null || { echo "emscripten not found: apt-get install emscripten" >&2; exit 2; }
# Debian's emscripten 3.1.6 needs its node modules (acorn, ...) to emit JS.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"
node_bin="$(command -v node)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

case "$what" in
  dist)
    build="$root/build/wasm"
    if [ ! -f "$build/CMakeCache.txt" ]; then
      emcmake cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS=-fexceptions -DCMAKE_CXX_FLAGS=-fexceptions
    fi
    cmake --build "$build" -j "$jobs" --target sparsedge_wasm
    mkdir -p "$here/dist"
    cp "$build/wasm/sparsedge.mjs" "$build/wasm/sparsedge.wasm" "$here/dist/"
    # ImageNet class names for the demo page, when the asset cache has them.
    classes="${SPARSEDGE_CACHE:-$HOME/.cache/sparsedge}/imagenet/imagenet_classes.json"
    if [ -f "$classes" ]; then cp "$classes" "$here/dist/"; fi
    echo "wasm/dist: $(ls "$here/dist" | tr '\n' ' ')"
    ;;
  tests)
    build="$root/build/wasm-tests"
    # Re-run every time (cheap) so that flag changes here reach an existing build.
    # NODERAWFS + node_env.pre.js: test_models reads $SPARSEDGE_MODEL_CHECK_DIR.
    emcmake cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DSPARSEDGE_BUILD_TESTS=ON -DSPARSEDGE_BUILD_EXAMPLES=OFF \
      "-DCMAKE_C_FLAGS=-fexceptions -pthread" "-DCMAKE_CXX_FLAGS=-fexceptions -pthread" \
      "-DCMAKE_EXE_LINKER_FLAGS=-fexceptions -pthread -sPROXY_TO_PTHREAD -sEXIT_RUNTIME=1 -sPTHREAD_POOL_SIZE=4 -sINITIAL_MEMORY=268435456 -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 --pre-js $here/src/node_env.pre.js" \
      "-DCMAKE_CROSSCOMPILING_EMULATOR=$node_bin;--no-experimental-fetch" >/dev/null
    # Only the tests: the benchmarks are not part of them.
    cmake --build "$build" -j "$jobs" --target sparsedge_tests
    (cd "$build" && ctest --output-on-failure -V)
    ;;
  *)
    echo "usage: $0 [dist|tests]" >&2
    exit 2
    ;;
esac
