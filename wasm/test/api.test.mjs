// The JS API's contract: names, output objects, and errors thrown as JS
// Errors carrying the core's message. Bad model bytes need no model; the rest
// uses MobileNet-v1 from SPARSEDGE_MODEL_CHECK_DIR (skipped without it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { InferenceSession } from '../dist/sparsedge.mjs';

const dir = process.env.SPARSEDGE_MODEL_CHECK_DIR;
const modelPath = dir ? join(dir, 'mobilenet-v1.onnx') : null;
const skip = modelPath && existsSync(modelPath) ? false : 'SPARSEDGE_MODEL_CHECK_DIR with mobilenet-v1.onnx is not set';

test('bad model bytes throw InvalidModelError with the core message', async () => {
  await assert.rejects(InferenceSession.create(new Uint8Array([0xff, 0x01, 0x02, 0x03])),
    (e) => e instanceof Error && e.name === 'InvalidModelError' && e.code === 'INVALID_MODEL' && /protobuf|model/i.test(e.message));
  await assert.rejects(InferenceSession.create('model.onnx'), (e) => e.name === 'InvalidArgumentError');
  await assert.rejects(InferenceSession.create(new ArrayBuffer(0)), (e) => e instanceof Error);
});

test('threads other than 1 are refused (single-threaded build)', async () => {
  await assert.rejects(InferenceSession.create(new Uint8Array(8), { threads: 4 }), /single-threaded/);
});

test('session API: names, run, feeds errors, release', { skip }, async () => {
  const bytes = new Uint8Array(readFileSync(modelPath));
  const session = await InferenceSession.create(bytes.buffer, { threads: 1 });
  assert.deepEqual(session.inputNames, ['input']);
  assert.equal(session.outputNames.length, 1);
  const input = { data: new Float32Array(3 * 224 * 224).fill(0.5), dims: [1, 3, 224, 224] };
  const outputs = await session.run({ input });
  const out = outputs[session.outputNames[0]];
  assert.deepEqual(out.dims, [1, 1000]);
  assert.equal(out.type, 'float32');
  assert.ok(out.data instanceof Float32Array && out.data.length === 1000);
  assert.ok(out.data.every(Number.isFinite));
  // Outputs are copies: a second run does not change the first result.
  const first = Float32Array.from(out.data);
  await session.run({ input: { data: new Float32Array(3 * 224 * 224).fill(-0.5), dims: [1, 3, 224, 224] } });
  assert.deepEqual(out.data, first);

  await assert.rejects(session.run({ nope: input }),
    (e) => e.name === 'InvalidArgumentError' && /nope|input/.test(e.message));
  await assert.rejects(session.run({ input: { data: new Float32Array(3 * 100 * 100), dims: [1, 3, 100, 100] } }),
    (e) => e.name === 'InvalidArgumentError' && e.message.length > 0, 'wrong shape');
  await assert.rejects(session.run({ input: { data: new Int32Array(3 * 224 * 224), dims: [1, 3, 224, 224] } }),
    (e) => e.name === 'InvalidArgumentError' && /int32|dtype|type/.test(e.message), 'wrong dtype');
  await assert.rejects(session.run({ input: { data: new Float32Array(5), dims: [1, 3, 224, 224] } }),
    (e) => e.name === 'InvalidArgumentError');
  // onnxruntime-web's Tensor has the same fields: {data, dims, type}.
  const again = await session.run({ input: { ...input, type: 'float32' } });
  assert.deepEqual(again[session.outputNames[0]].data, first);
  await session.release();
  await assert.rejects(session.run({ input }), /released/);
});
