// Whole models through the JS API under node vs onnxruntime's outputs
// (computed on x86 by tools/make_model_checks.py DIR):
//   SPARSEDGE_MODEL_CHECK_DIR=DIR node --test wasm/test/
// Skipped when SPARSEDGE_MODEL_CHECK_DIR is unset. Tolerance:
// max|diff| / max|ref| <= 1e-4, as in tests/cpp/test_models.cc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { InferenceSession, getIsa } from '../dist/sparsedge.mjs';

const dir = process.env.SPARSEDGE_MODEL_CHECK_DIR;
const skip = dir ? false : 'SPARSEDGE_MODEL_CHECK_DIR is not set (python tools/make_model_checks.py DIR writes it)';

// SDEF32T1 tensor files: magic, int64 rank, int64 dims, float32 data (LE).
function readF32t(path) {
  const buf = readFileSync(path);
  assert.equal(buf.subarray(0, 8).toString('latin1'), 'SDEF32T1', `${path}: not an SDEF32T1 file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const rank = Number(view.getBigInt64(8, true));
  const dims = [];
  for (let i = 0; i < rank; ++i) dims.push(Number(view.getBigInt64(16 + 8 * i, true)));
  const offset = 16 + 8 * rank;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + buf.byteLength));
  return { data, dims };
}

const checks = dir
  ? readFileSync(join(dir, 'checks.txt'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/))
  : [];

test('the kernels are the SIMD128 ones', { skip: false }, async () => {
  assert.equal(await getIsa(), 'wasmsimd');
});

for (const [name, modelFile, inputName, inputFile, expectedFile] of checks) {
  test(`${name} matches onnxruntime`, { skip }, async () => {
    const session = await InferenceSession.create(readFileSync(join(dir, modelFile)), { threads: 1 });
    try {
      assert.deepEqual(session.inputNames, [inputName]);
      const input = readF32t(join(dir, inputFile));
      const expected = readF32t(join(dir, expectedFile));
      const outputs = await session.run({ [inputName]: input });
      const out = outputs[session.outputNames[0]];
      assert.equal(out.type, 'float32');
      assert.deepEqual(out.dims, expected.dims);
      let maxDiff = 0, maxRef = 0;
      for (let i = 0; i < expected.data.length; ++i) {
        maxDiff = Math.max(maxDiff, Math.abs(out.data[i] - expected.data[i]));
        maxRef = Math.max(maxRef, Math.abs(expected.data[i]));
      }
      const rel = maxDiff / Math.max(maxRef, 1e-12);
      console.log(`${name}: max|diff|/max|ref| = ${rel.toExponential(2)}`);
      assert.ok(rel <= 1e-4, `${name}: max|diff|/max|ref| = ${rel} > 1e-4`);
    } finally {
      await session.release();
    }
  });
}

test(`no model checks skipped`, { skip }, () => {
  assert.ok(checks.length >= 3, `expected 3 checks in ${dir}/checks.txt, found ${checks.length}`);
});
