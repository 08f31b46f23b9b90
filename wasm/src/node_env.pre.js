// Native test binaries under node (wasm/build.sh tests): let getenv() see the
// real environment (SPARSEDGE_MODEL_CHECK_DIR, SPARSEDGE_ISA), which
// emscripten does not pass through by default. Files are reached through
// NODERAWFS. A binary that never calls getenv() has no ENV object at all.
Module['preRun'] = Module['preRun'] || [];
Module['preRun'].push(function () {
  if (typeof ENV !== 'undefined' && typeof process === 'object' && process.env) {
    Object.assign(ENV, process.env);
  }
});
