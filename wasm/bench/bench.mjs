// sparsedge (wasm/dist, SIMD128) vs onnxruntime-web (npm, WASM SIMD backend)
// in one node process, single thread, alternating runs, medians.
//
//   node wasm/bench/bench.mjs [DIR] [--runs N] [--warmup N]
//
// DIR (default $SPARSEDGE_MODEL_CHECK_DIR) holds the files written by
// `python tools/make_model_checks.py DIR`: mobilenet-v1.onnx (dense),
// mobilenet-v1-sparse80.onnx (80% group-sparse, 4x1 blocks) and
// efficientnet-lite0.onnx. Every network is compared against
// onnxruntime-web running the DENSE file of the same network; onnxruntime-web
// on the sparse file itself (it runs the model-local function bodies, i.e. a
// densified conv) is printed as an extra line when it loads.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import * as ort from 'onnxruntime-web';
import { InferenceSession as SdeSession, getIsa } from '../dist/sparsedge.mjs';

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  args.splice(i, 2);
  return value;
}
const runs = option('--runs', 21);
const warmup = option('--warmup', 3);
const dir = args[0] || process.env.SPARSEDGE_MODEL_CHECK_DIR;
if (!dir || !existsSync(join(dir, 'mobilenet-v1.onnx'))) {
  console.error('usage: node wasm/bench/bench.mjs DIR  (DIR from: python tools/make_model_checks.py DIR)');
  process.exit(2);
}

ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.logLevel = 'error';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

function randomInput(dims, seed = 1) {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let s = seed >>> 0;
  for (let i = 0; i < data.length; ++i) { s = (s * 1664525 + 1013904223) >>> 0; data[i] = s / 2 ** 31 - 1; }
  return data;
}

// Each runner: async () => void (one inference).
async function sparsedgeRunner(file) {
  const session = await SdeSession.create(readFileSync(join(dir, file)), { threads: 1 });
  const name = session.inputNames[0];
  const input = { data: randomInput([1, 3, 224, 224]), dims: [1, 3, 224, 224] };
  return { run: () => session.run({ [name]: input }), release: () => session.release() };
}

async function ortRunner(file) {
  const session = await ort.InferenceSession.create(readFileSync(join(dir, file)), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all', intraOpNumThreads: 1,
  });
  const name = session.inputNames[0];
  const input = new ort.Tensor('float32', randomInput([1, 3, 224, 224]), [1, 3, 224, 224]);
  return { run: () => session.run({ [name]: input }), release: () => session.release() };
}

// Alternates the runners, `warmup` untimed rounds then `runs` timed ones.
async function race(runners) {
  const times = runners.map(() => []);
  for (let round = 0; round < warmup + runs; ++round) {
    for (let i = 0; i < runners.length; ++i) {
      const t0 = performance.now();
      await runners[i].run();
      const dt = performance.now() - t0;
      if (round >= warmup) times[i].push(dt);
    }
  }
  return times.map(median);
}

const cases = [
  { label: 'MobileNet-v1 1.0/224 dense', sparsedge: 'mobilenet-v1.onnx', baseline: 'mobilenet-v1.onnx' },
  { label: 'MobileNet-v1 80% sparse (4x1)', sparsedge: 'mobilenet-v1-sparse80.onnx', baseline: 'mobilenet-v1.onnx', ortSame: 'mobilenet-v1-sparse80.onnx' },
  { label: 'EfficientNet-Lite0 dense', sparsedge: 'efficientnet-lite0.onnx', baseline: 'efficientnet-lite0.onnx' },
];

console.log(`sparsedge ${await getIsa()} vs onnxruntime-web ${ort.env.versions?.web ?? ''} wasm, 1 thread, ` +
            `node ${process.version}, ${warmup} warm-up + ${runs} alternating runs, medians`);
console.log('| network | sparsedge ms | onnxruntime-web dense ms | speed vs ort-web dense |');
console.log('|---|---:|---:|---:|');
const extra = [];
for (const c of cases) {
  if (!existsSync(join(dir, c.sparsedge))) { console.log(`| ${c.label} | missing ${c.sparsedge} | | |`); continue; }
  const runners = [await sparsedgeRunner(c.sparsedge), await ortRunner(c.baseline)];
  let ortSameIndex = -1;
  if (c.ortSame) {
    try {
      runners.push(await ortRunner(c.ortSame));
      ortSameIndex = runners.length - 1;
    } catch (e) {
      extra.push(`onnxruntime-web cannot load ${c.ortSame}: ${String(e.message || e).split('\n')[0]}`);
    }
  }
  const t = await race(runners);
  console.log(`| ${c.label} | ${t[0].toFixed(2)} | ${t[1].toFixed(2)} | ${(t[1] / t[0]).toFixed(2)}x |`);
  if (ortSameIndex >= 0) {
    extra.push(`onnxruntime-web on ${c.ortSame} itself (function bodies, dense math): ${t[ortSameIndex].toFixed(2)} ms`);
  }
  for (const r of runners) await r.release();
}
for (const line of extra) console.log(line);
