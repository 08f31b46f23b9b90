// Native test binaries under node (wasm/build.sh tests): let getenv() see the
// real environment (SPARSEDGE_MODEL_CHECK_DIR, SPARSEDGE_ISA), which
// emscripten does not pass through by default. Files are reached through
// NODERAWFS.
Module['preRun'] = Module['preRun'] || [];
Module['preRun'].push(function () {
  if (typeof process === 'object' && process.env) Object.assign(ENV, process.env);
});
