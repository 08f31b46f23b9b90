// The JS API of sparsedge.mjs, appended to emscripten's ES-module glue
// (--extern-post-js), so `createSparsedgeModule` below is the glue's factory.
// Mirrors the Python API and onnxruntime-web's shape:
//
//   import { InferenceSession, Generator } from './sparsedge.mjs';
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

// ---------------------------------------------------------------- text generation
//
//   import { Generator } from './sparsedge.mjs';
//   const gen = await Generator.create('https://host/smollm2/', { maxContext: 512 });
//   const { text, ids } = await gen.generate('The capital of France is', {
//     maxNewTokens: 16, onToken: (piece) => out.append(piece) });
//   for await (const piece of gen.stream('Once upon a time', { temperature: 0.7, seed: 1 })) ...
//   gen.delete();
//
// The decoder directory (model.onnx, model.onnx.data, tokenizer.json,
// generation_config.json, as `sparsedge models build smollm2` and
// `sparsedge export-llm` write it) is written into the module's in-memory file
// system, loaded by sde::llm::Generator::from_dir, then removed again (the
// core keeps what it needs). Tokenizer, sampler and the loop are the core's,
// so a seed gives the same tokens as in Python and the C API.

const DECODER_FILES = [
  // [option name, file name, required when the source is a directory]
  ['model', 'model.onnx', true],
  ['data', 'model.onnx.data', false],
  ['tokenizer', 'tokenizer.json', true],
  ['generationConfig', 'generation_config.json', false],
];

// What WasmGenerator.next() returns besides token ids (generator_embind.cc).
const NEXT_STOP_TOKEN = -1;
const NEXT_CONTEXT_FULL = -2;

let generatorCount = 0;

function isUrlString(s) {
  return /^(https?|file|blob|data):/i.test(s);
}

// Bytes of one file: Uint8Array / ArrayBuffer / view as is; a URL (string or
// URL object) fetched; under node, a string that is not a URL is a file path.
// `optional`: a missing file gives null instead of an error.
async function fileBytes(source, what, optional = false) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof source === 'string' || source instanceof URL) {
    const text = String(source);
    if (isNode && (source instanceof URL ? source.protocol === 'file:' : !/^(https?|blob|data):/i.test(text))) {
      const fs = await import('node:fs/promises');
      try {
        return new Uint8Array(await fs.readFile(text.startsWith('file:') ? new URL(text) : text));
      } catch (e) {
        if (optional && e.code === 'ENOENT') return null;
        throw sparsedgeError(4, `${what}: cannot read '${text}': ${e.message}`);
      }
    }
    const base = typeof document !== 'undefined' ? document.baseURI : (typeof location !== 'undefined' ? location.href : undefined);
    let response;
    try {
      response = await fetch(new URL(text, base));
    } catch (e) {
      throw sparsedgeError(4, `${what}: cannot fetch '${text}': ${e.message}`);
    }
    if (!response.ok) {
      if (optional && response.status === 404) return null;
      throw sparsedgeError(4, `${what}: cannot fetch '${text}': HTTP ${response.status}`);
    }
    return new Uint8Array(await response.arrayBuffer());
  }
  throw invalidArgument(`${what} must be a Uint8Array, an ArrayBuffer or a URL${isNode ? ' or a file path' : ''}`);
}

function joinPath(dir, name) {
  if (dir instanceof URL) return new URL(name, dir.href.endsWith('/') ? dir : new URL(dir.href + '/'));
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function positiveInteger(name, value, fallback) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalidArgument(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

// A uint64 seed as [low, high] 32-bit halves; negative seeds wrap like Python's `seed & (2**64 - 1)`.
function seedHalves(seed) {
  let big;
  if (typeof seed === 'bigint') big = seed;
  else if (typeof seed === 'number' && Number.isSafeInteger(seed)) big = BigInt(seed);
  else throw invalidArgument(`seed must be an integer (number or BigInt), got ${seed}`);
  big = BigInt.asUintN(64, big);
  return [Number(big & 0xffffffffn), Number(big >> 32n)];
}

// Waits for the event loop so that the page can repaint between tokens
// (setImmediate under node; a MessageChannel task in browsers and workers,
// which has no 4 ms clamp like nested setTimeout).
const yieldToEventLoop = (() => {
  if (typeof setImmediate === 'function') return () => new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting = [];
    channel.port1.onmessage = () => waiting.shift()();
    return () => new Promise((resolve) => {
      waiting.push(resolve);
      channel.port2.postMessage(null);
    });
  }
  return () => new Promise((resolve) => setTimeout(resolve, 0));
})();

// Token bytes -> text pieces, only whole UTF-8 characters (a character split
// across tokens comes out with its last byte); invalid bytes become U+FFFD.
class PieceDecoder {
  constructor() {
    this._decoder = new TextDecoder('utf-8', { fatal: false });
  }

  push(bytes) {
    return this._decoder.decode(bytes, { stream: true });
  }

  finish() {
    return this._decoder.decode();
  }
}

export class Generator {
  constructor(module, native) {
    this._module = module;
    this._native = native;
    this._busy = false;
    const info = native.info();
    this.maxContext = info.maxContext;
    this.vocabSize = info.vocabSize;
    this.layers = info.layers;
    this.stopIds = Array.from(info.stopIds);
    this.contextLength = info.contextLength;
    this.defaultMaxNewTokens = info.maxNewTokens;
    this.hasChatTemplate = info.hasChatTemplate;
    // Bytes held by the KV cache and by the activation arena (planned once).
    this.memory = { kvCacheBytes: info.kvCacheBytes, arenaBytes: info.arenaBytes };
    this.lastStats = null;
  }

  // source: a directory (URL string / URL, or under node a path) holding
  // model.onnx, tokenizer.json and optionally model.onnx.data and
  // generation_config.json; or {model, data, tokenizer, generationConfig},
  // each a Uint8Array / ArrayBuffer / URL / (node) path, `data` and
  // `generationConfig` optional.
  // options: {maxContext (KV cache positions; default min(model context, 2048)),
  //           prefillChunk: 64, threads: 1, isa: 'wasmsimd' | 'scalar'}.
  static async create(source, options = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('Generator.create: options must be an object');
    const threads = options.threads === undefined ? 1 : options.threads;
    if (threads !== 1) {
      throw invalidArgument(`threads must be 1: this WebAssembly build is single-threaded (got ${threads})`);
    }
    const maxContext = positiveInteger('maxContext', options.maxContext, 0);
    const prefillChunk = positiveInteger('prefillChunk', options.prefillChunk, 64);
    const isa = options.isa === undefined ? '' : String(options.isa);

    const files = [];  // [file name, bytes]
    if (typeof source === 'string' || source instanceof URL) {
      for (const [, name, required] of DECODER_FILES) {
        const bytes = await fileBytes(joinPath(source, name), name, !required);
        if (bytes !== null) files.push([name, bytes]);
      }
    } else if (source !== null && typeof source === 'object' && !ArrayBuffer.isView(source) && !(source instanceof ArrayBuffer)) {
      const known = new Set(DECODER_FILES.map(([key]) => key));
      for (const key of Object.keys(source)) {
        if (!known.has(key)) throw invalidArgument(`Generator.create: unknown file '${key}' (expected ${[...known].join(', ')})`);
      }
      for (const [key, name] of DECODER_FILES) {
        if (source[key] !== undefined && source[key] !== null) files.push([name, await fileBytes(source[key], key)]);
      }
    } else {
      throw invalidArgument('Generator.create: source must be a directory URL/path or {model, data, tokenizer, generationConfig}');
    }

    const M = await loadModule();
    const dir = `/sparsedge-decoder-${++generatorCount}`;
    let native;
    M.FS.mkdir(dir);
    try {
      // canOwn: the in-memory file uses the bytes without a copy (they are only read).
      for (const [name, bytes] of files) M.FS.writeFile(`${dir}/${name}`, bytes, { canOwn: true });
      native = new M.WasmGenerator(dir, threads, isa, maxContext, prefillChunk);
    } finally {
      // The core keeps what it needs; the files go (even after a failed write).
      for (const [name] of files) {
        try { M.FS.unlink(`${dir}/${name}`); } catch (e) { /* never written */ }
      }
      M.FS.rmdir(dir);
    }
    const status = native.errorCode();
    if (status !== 0) {
      const message = native.errorMessage();
      native.delete();
      throw sparsedgeError(status, message.split(dir + '/').join(''));
    }
    return new Generator(M, native);
  }

  _check() {
    if (this._native === null) throw invalidArgument('this Generator was deleted');
  }

  _throwNative() {
    throw sparsedgeError(this._native.errorCode(), this._native.errorMessage());
  }

  // The prompt's ids (an array of numbers); `chat` applies the model's
  // (ChatML) chat template for one user turn.
  encode(text, { chat = false } = {}) {
    this._check();
    if (typeof text !== 'string') throw invalidArgument(`encode: text must be a string, got ${typeof text}`);
    const ids = this._native.encode(text, Boolean(chat));
    if (ids === null) this._throwNative();
    return Array.from(ids);
  }

  // Text of token ids (invalid UTF-8 becomes U+FFFD); special tokens kept unless skipSpecialTokens.
  decode(ids, { skipSpecialTokens = false } = {}) {
    this._check();
    const list = this._ids(ids, 'decode');
    const text = this._native.decode(list, Boolean(skipSpecialTokens));
    if (text === null) this._throwNative();
    return text;
  }

  // The streamed pieces of `ids` as generate() hands them to onToken: each
  // token's bytes (special tokens skipped), cut only at whole UTF-8 characters.
  decodePieces(ids) {
    this._check();
    const decoder = new PieceDecoder();
    const pieces = [];
    for (const id of this._ids(ids, 'decodePieces')) {
      const piece = decoder.push(this._tokenBytes(id));
      if (piece) pieces.push(piece);
    }
    const tail = decoder.finish();
    if (tail) pieces.push(tail);
    return pieces;
  }

  _ids(ids, what) {
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw invalidArgument(`${what}: ids must be an array of token ids`);
    const list = Array.from(ids, Number);
    if (list.some((id) => !Number.isInteger(id) || id < -2147483648 || id > 2147483647)) {
      throw invalidArgument(`${what}: token ids must be integers`);
    }
    return list;
  }

  _tokenBytes(id) {
    const bytes = this._native.tokenBytes(id);
    if (bytes === null) this._throwNative();
    return bytes;
  }

  // Generates a continuation of `prompt` (text, or an array of token ids).
  // options: {maxNewTokens (default: generation_config.json's), temperature: 0
  //   (greedy), topK: 0 (all), topP: 1, seed: 0 (number or BigInt), chat: false,
  //   stopIds (default: the model's), onToken(piece): called with each piece of
  //   text as soon as it is whole UTF-8; returning false stops generation}.
  // Resolves to {text, ids, promptTokens, stoppedBy: 'stop_token' |
  // 'max_new_tokens' | 'context_full' | 'caller'}. Between tokens it yields to
  // the event loop, so a page stays responsive and shows the pieces as they come.
  async generate(prompt, options = {}) {
    this._check();
    const request = this._request(prompt, options, 'generate');
    const { onToken } = options;
    if (onToken !== undefined && typeof onToken !== 'function') throw invalidArgument('onToken must be a function');
    let text = '';
    for await (const piece of this._pieces(request)) {
      text += piece;
      if (onToken && (await onToken(piece)) === false) break;
    }
    const { ids, promptTokens, stoppedBy } = this.lastStats;
    return { text, ids, promptTokens, stoppedBy };
  }

  // The same generation as an async iterator of text pieces (the options of
  // generate() but onToken): `for await (const piece of gen.stream(prompt)) ...`;
  // leaving the loop early stops it. this.lastStats says how it ended.
  stream(prompt, options = {}) {
    this._check();
    return this._pieces(this._request(prompt, options, 'stream'));
  }

  // Checks generate()/stream() arguments before anything runs.
  _request(prompt, options, what) {
    if (options === null || typeof options !== 'object') throw invalidArgument(`${what}: options must be an object`);
    const ids = typeof prompt === 'string' ? this.encode(prompt, { chat: Boolean(options.chat) }) : this._ids(prompt, what);
    let maxNewTokens = options.maxNewTokens;
    if (maxNewTokens === undefined || maxNewTokens === null) maxNewTokens = this.defaultMaxNewTokens;
    if (typeof maxNewTokens !== 'number' || !Number.isSafeInteger(maxNewTokens) || maxNewTokens < 0) {
      throw invalidArgument(`maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
    }
    const number = (name, value, fallback) => {
      if (value === undefined || value === null) return fallback;
      if (typeof value !== 'number') throw invalidArgument(`${name} must be a number, got ${typeof value}`);
      return value;
    };
    const temperature = number('temperature', options.temperature, 0);
    const topK = number('topK', options.topK, 0);
    if (!Number.isInteger(topK) || topK > 2147483647) throw invalidArgument(`topK must be an integer, got ${topK}`);
    const topP = number('topP', options.topP, 1);
    const [seedLo, seedHi] = seedHalves(options.seed === undefined ? 0 : options.seed);
    const stopIds = options.stopIds === undefined || options.stopIds === null ? null : this._ids(options.stopIds, 'stopIds');
    return { ids, maxNewTokens, temperature, topK, topP, seedLo, seedHi, stopIds };
  }

  // The token loop (the steps of Generator::generate in the core): yields the
  // non-empty text pieces; sets this.lastStats = {promptTokens, newTokens, ids,
  // stoppedBy} when it ends (null after an error).
  async *_pieces(r) {
    if (this._busy) throw invalidArgument('this Generator is already generating (finish or leave the previous generation first)');
    this._busy = true;
    this.lastStats = null;
    const stats = { promptTokens: r.ids.length, newTokens: 0, ids: [], stoppedBy: 'caller' };
    let failed = true;
    try {
      if (!this._native.start(r.ids, r.temperature, r.topK, r.topP, r.seedLo, r.seedHi, r.stopIds)) this._throwNative();
      const decoder = new PieceDecoder();
      let reason = 'max_new_tokens';
      while (stats.ids.length < r.maxNewTokens) {
        const id = this._native.next();
        if (id === NEXT_STOP_TOKEN) { reason = 'stop_token'; break; }
        if (id === NEXT_CONTEXT_FULL) { reason = 'context_full'; break; }
        if (id < 0) this._throwNative();
        stats.ids.push(id);
        stats.newTokens = stats.ids.length;
        const piece = decoder.push(this._tokenBytes(id));
        failed = false;  // the consumer may stop at a yield: that is no error
        if (piece) yield piece;
        failed = true;
        if (stats.ids.length < r.maxNewTokens) await yieldToEventLoop();
      }
      stats.stoppedBy = reason;
      failed = false;
      const tail = decoder.finish();
      if (tail) yield tail;
    } finally {
      this._busy = false;
      this.lastStats = failed ? null : stats;
    }
  }

  // Frees the model and the KV cache (the object is unusable afterwards).
  delete() {
    if (this._native !== null) {
      if (this._busy) throw invalidArgument('delete: a generation is still running (finish or leave it first)');
      this._native.delete();
      this._native = null;
    }
  }
}
