// The JS API of sparsedge.mjs, appended to emscripten's ES-module glue
// (--extern-post-js), so `createSparsedgeModule` below is the glue's factory.
// Mirrors the Python API and onnxruntime-web's shape:
//
//   import { InferenceSession } from './sparsedge.mjs';
//   const session = await InferenceSession.create(bytes, { threads: 1 });
//   const outputs = await session.run({ input: { data, dims } });  // {name: {data, dims, type}}
//   session.release();
//
// Tensors are any object with `data` (a typed array) and `dims`, so
// onnxruntime-web Tensors work as inputs too.

const STATUS_ERRORS = {
  1: ['InvalidArgumentError', 'INVALID_ARGUMENT'],
  2: ['InvalidModelError', 'INVALID_MODEL'],
  3: ['UnsupportedError', 'UNSUPPORTED'],
  4: ['ModelFileNotFoundError', 'FILE_NOT_FOUND'],
  5: ['OutOfMemoryError', 'OUT_OF_MEMORY'],
  6: ['SparsedgeError', 'INTERNAL'],
};

function sparsedgeError(status, message) {
  const [name, code] = STATUS_ERRORS[status] || ['SparsedgeError', 'INTERNAL'];
  const error = new Error(message);
  error.name = name;
  error.code = code;
  return error;
}

function invalidArgument(message) {
  return sparsedgeError(1, message);
}

// ONNX TensorProto.DataType numbers, by onnxruntime-web type name.
const DTYPES = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13,
};

function typeOfData(data) {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigUint64Array) return 'uint64';
  return null;
}

const isNode = typeof process === 'object' && process.versions != null && process.versions.node != null;

let modulePromise = null;

// The glue of this emscripten version fetch()es the .wasm when fetch exists,
// which fails for file paths under node 20: there, read the file ourselves.
async function loadModule() {
  if (modulePromise === null) {
    modulePromise = (async () => {
      const options = {};
      if (isNode) {
        // The ES-module glue of emscripten 3.1.6 still uses CommonJS's
        // `require` and `__dirname` under node; give it both.
        const { createRequire } = await import('node:module');
        const { fileURLToPath } = await import('node:url');
        const path = await import('node:path');
        globalThis.require ??= createRequire(import.meta.url);
        globalThis.__dirname ??= path.dirname(fileURLToPath(import.meta.url));
        const fs = await import('node:fs/promises');
        options.wasmBinary = await fs.readFile(new URL('./sparsedge.wasm', import.meta.url));
      }
      return createSparsedgeModule(options);
    })();
  }
  return modulePromise;
}

export class InferenceSession {
  constructor(module, native) {
    this._module = module;
    this._native = native;
    this.inputMetadata = native.inputs();
    this.outputMetadata = native.outputs();
    this.inputNames = this.inputMetadata.map((v) => v.name);
    this.outputNames = this.outputMetadata.map((v) => v.name);
  }

  // model: Uint8Array | ArrayBuffer | ArrayBufferView with the .onnx bytes.
  // options: {threads: 1, isa: 'wasmsimd' | 'scalar' (testing/bisecting)}.
  static async create(model, options = {}) {
    let bytes;
    if (model instanceof Uint8Array) bytes = model;
    else if (model instanceof ArrayBuffer) bytes = new Uint8Array(model);
    else if (ArrayBuffer.isView(model)) bytes = new Uint8Array(model.buffer, model.byteOffset, model.byteLength);
    else throw invalidArgument('InferenceSession.create: model must be a Uint8Array or ArrayBuffer of .onnx bytes');
    const threads = options.threads === undefined ? 1 : options.threads;
    if (threads !== 1) {
      throw invalidArgument(`threads must be 1: this WebAssembly build is single-threaded (got ${threads})`);
    }
    const isa = options.isa === undefined ? '' : String(options.isa);
    const M = await loadModule();
    const ptr = M._malloc(Math.max(bytes.length, 1));
    if (ptr === 0) throw sparsedgeError(5, `cannot allocate ${bytes.length} bytes for the model`);
    let native;
    try {
      M.HEAPU8.set(bytes, ptr);
      native = new M.WasmSession(ptr, bytes.length, threads, isa);
    } finally {
      M._free(ptr);  // the core copies what it keeps
    }
    const status = native.errorCode();
    if (status !== 0) {
      const message = native.errorMessage();
      native.delete();
      throw sparsedgeError(status, message);
    }
    return new InferenceSession(M, native);
  }

  // feeds: {name: {data: TypedArray, dims: number[]}} (an onnxruntime-web Tensor works).
  // fetches: optional array of output names (default: all).
  // Returns {name: {data, dims, type}} with fresh copies of the outputs.
  async run(feeds, fetches) {
    if (this._native === null) throw invalidArgument('run() on a released session');
    if (feeds === null || typeof feeds !== 'object') {
      throw invalidArgument('run(feeds): feeds must be an object of input name -> {data, dims}');
    }
    const M = this._module;
    const allocated = [];
    try {
      const list = [];
      for (const [name, tensor] of Object.entries(feeds)) {
        if (tensor === null || typeof tensor !== 'object' || !ArrayBuffer.isView(tensor.data) ||
            !Array.isArray(tensor.dims) && !ArrayBuffer.isView(tensor.dims)) {
          throw invalidArgument(`input '${name}' must be a tensor {data: TypedArray, dims: number[]}`);
        }
        const type = tensor.type || typeOfData(tensor.data);
        if (!(type in DTYPES) || type === 'string') {
          throw invalidArgument(`input '${name}' has an unsupported type ${type}`);
        }
        const dims = Array.from(tensor.dims, Number);
        if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
          throw invalidArgument(`input '${name}' has invalid dims [${dims}]`);
        }
        const expected = dims.reduce((a, b) => a * b, 1);
        if (tensor.data.length !== expected) {
          throw invalidArgument(`input '${name}': data has ${tensor.data.length} elements but dims [${dims}] need ${expected}`);
        }
        const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
        const ptr = M._malloc(Math.max(bytes.length, 16));
        if (ptr === 0) throw sparsedgeError(5, `cannot allocate ${bytes.length} bytes for input '${name}'`);
        allocated.push(ptr);
        M.HEAPU8.set(bytes, ptr);
        list.push({ name, dtype: DTYPES[type], dims, ptr });
      }
      const names = fetches === undefined || fetches === null ? [] : Array.from(fetches, String);
      const results = this._native.run(list, names);
      if (results === null) {
        throw sparsedgeError(this._native.errorCode(), this._native.errorMessage());
      }
      const out = {};
      for (const r of results) out[r.name] = { data: r.data, dims: r.dims, type: r.type };
      return out;
    } finally {
      for (const ptr of allocated) M._free(ptr);
    }
  }

  async release() {
    if (this._native !== null) {
      this._native.delete();
      this._native = null;
    }
  }
}

// The kernel instruction set chosen at start-up ('wasmsimd' or 'scalar').
export async function getIsa() {
  return (await loadModule()).isa();
}
