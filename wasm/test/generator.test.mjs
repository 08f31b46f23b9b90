// Generator (sde::llm::Generator in WebAssembly) against the Python face on
// the same decoder directory: SPARSEDGE_GENERATOR_CHECK names a JSON file
// written by tests/python/test_wasm.py with the directory (a tiny synthetic
// llama built by the exporter) and what sparsedge.Generator produced there.
// Greedy and seeded ids must be equal (the sampler's draws are the same on
// every platform), streamed pieces must be Python's, and bad inputs must throw
// the core's errors. Skipped without SPARSEDGE_GENERATOR_CHECK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { Generator } from '../dist/sparsedge.mjs';

const checkPath = process.env.SPARSEDGE_GENERATOR_CHECK;
const skip = checkPath && existsSync(checkPath) ? false : 'SPARSEDGE_GENERATOR_CHECK is not set (tests/python/test_wasm.py sets it)';
const check = skip ? null : JSON.parse(readFileSync(checkPath, 'utf8'));
const options = skip ? null : { maxContext: check.max_context, prefillChunk: check.prefill_chunk };

let shared = null;
async function generator() {
  shared ??= await Generator.create(check.dir, options);
  return shared;
}

test('generator: loads a decoder directory (path) with the Python face\'s settings', { skip }, async () => {
  const gen = await generator();
  assert.equal(gen.maxContext, check.max_context);
  assert.deepEqual(gen.stopIds, check.stop_ids);
  assert.ok(gen.memory.kvCacheBytes > 0 && gen.memory.arenaBytes > 0);
  assert.deepEqual(gen.encode(check.greedy.prompt), check.greedy.prompt_ids);
  assert.deepEqual(gen.encode(check.unicode.text), check.unicode.ids);
});

test('generator: greedy ids match Python and streamed pieces join to the text', { skip }, async () => {
  const gen = await generator();
  const pieces = [];
  const result = await gen.generate(check.greedy.prompt, { maxNewTokens: check.greedy.max_new_tokens, onToken: (p) => { pieces.push(p); } });
  assert.deepEqual(result.ids, check.greedy.ids);
  assert.equal(result.promptTokens, check.greedy.prompt_ids.length);
  assert.equal(result.stoppedBy, check.greedy.stopped_by);
  assert.deepEqual(pieces, check.greedy.pieces);  // Python's incremental UTF-8 decoding, piece by piece
  assert.equal(pieces.join(''), result.text);
  assert.equal(result.text, check.greedy.text);
  assert.equal(gen.decode(result.ids, { skipSpecialTokens: true }), check.greedy.text);
  // The prompt as ids gives the same continuation.
  const again = await gen.generate(check.greedy.prompt_ids, { maxNewTokens: check.greedy.max_new_tokens });
  assert.deepEqual(again.ids, check.greedy.ids);
  // The async-iterator form streams the same pieces.
  const streamed = [];
  for await (const piece of gen.stream(check.greedy.prompt, { maxNewTokens: check.greedy.max_new_tokens })) streamed.push(piece);
  assert.deepEqual(streamed, check.greedy.pieces);
  assert.deepEqual(gen.lastStats.ids, check.greedy.ids);
  assert.equal(gen.lastStats.stoppedBy, check.greedy.stopped_by);
});

test('generator: seeded sampling is reproducible and equals Python with the same seed', { skip }, async () => {
  const gen = await generator();
  for (const run of check.sampled) {
    const opts = {
      maxNewTokens: run.max_new_tokens, temperature: run.temperature, topK: run.top_k, topP: run.top_p,
      seed: run.seed_is_big ? BigInt(run.seed) : Number(run.seed),
    };
    const first = await gen.generate(run.prompt, opts);
    const second = await gen.generate(run.prompt, opts);
    assert.deepEqual(first.ids, second.ids, 'same seed, same draws');
    assert.deepEqual(first.ids, run.ids, `seed ${run.seed}: Python drew ${run.ids}`);
    assert.equal(first.text, run.text);
  }
});

test('generator: stop tokens end generation without being emitted; onToken can stop it', { skip }, async () => {
  const gen = await generator();
  const r = await gen.generate(check.greedy.prompt, { maxNewTokens: 64, stopIds: check.stop.stop_ids });
  assert.deepEqual(r.ids, check.stop.ids);
  assert.equal(r.stoppedBy, 'stop_token');
  let calls = 0;
  const stopped = await gen.generate(check.greedy.prompt, { maxNewTokens: 20, onToken: () => ++calls < 3 });
  assert.equal(stopped.stoppedBy, 'caller');
  assert.equal(calls, 3);
  assert.deepEqual(stopped.ids, check.greedy.ids.slice(0, stopped.ids.length));
  // Leaving a stream early stops it and frees the generator for the next call.
  for await (const piece of gen.stream(check.greedy.prompt, { maxNewTokens: 20 })) {
    assert.equal(piece, check.greedy.pieces[0]);
    break;
  }
  assert.equal(gen.lastStats.stoppedBy, 'caller');
  assert.deepEqual(gen.lastStats.ids, check.greedy.ids.slice(0, gen.lastStats.ids.length));
  // The cache fills up (the last token is sampled from the last position's logits, never fed).
  const full = await gen.generate(check.full.prompt_ids, { maxNewTokens: 100 });
  assert.deepEqual(full.ids, check.full.ids);
  assert.equal(full.stoppedBy, check.full.stopped_by);
  // One generate() at a time per Generator.
  const running = gen.generate(check.greedy.prompt, { maxNewTokens: 4 });
  await assert.rejects(gen.generate(check.greedy.prompt, { maxNewTokens: 4 }), /already generating/);
  await running;
});

test('generator: UTF-8 split across tokens is streamed as whole characters', { skip }, async () => {
  const gen = await generator();
  // Byte-level vocabulary: 'é' and '€' are 2 and 3 tokens, each piece is whole.
  assert.ok(check.unicode.ids.length > [...check.unicode.text].length);
  assert.deepEqual(gen.decodePieces(check.unicode.ids), [...check.unicode.text]);
  assert.equal(gen.decode(check.unicode.ids), check.unicode.text);
  // A dangling lead byte is flushed as U+FFFD at the end, as Python's decoder does.
  assert.deepEqual(gen.decodePieces(check.unicode.ids.slice(0, 2)), ['h', '\ufffd']);
});

test('generator: bad inputs throw the core\'s errors', { skip }, async () => {
  const gen = await generator();
  await assert.rejects(gen.generate(''), (e) => e.name === 'InvalidArgumentError' && e.code === 'INVALID_ARGUMENT' && /empty/.test(e.message));
  await assert.rejects(gen.generate(check.greedy.prompt, { temperature: -1 }),
    (e) => e.name === 'InvalidArgumentError' && /temperature/.test(e.message));
  await assert.rejects(gen.generate(check.greedy.prompt, { topP: 0 }), (e) => e.name === 'InvalidArgumentError' && /top_p/.test(e.message));
  await assert.rejects(gen.generate('x'.repeat(check.max_context + 1)),
    (e) => e.name === 'InvalidArgumentError' && new RegExp(`${check.max_context + 1} tokens`).test(e.message));
  await assert.rejects(gen.generate(check.greedy.prompt, { maxNewTokens: -1 }), /maxNewTokens/);
  await assert.rejects(gen.generate(check.greedy.prompt, { seed: 0.5 }), /seed/);
  await assert.rejects(gen.generate([check.max_context * 1000]), (e) => e.name === 'InvalidArgumentError' && /vocabulary/.test(e.message));
  assert.throws(() => gen.encode('hi', { chat: true }), (e) => e.name === 'UnsupportedError' && /chat template/.test(e.message));
  // The generator still works after errors.
  const ok = await gen.generate(check.greedy.prompt, { maxNewTokens: check.greedy.max_new_tokens });
  assert.deepEqual(ok.ids, check.greedy.ids);

  const files = (names) => Object.fromEntries(names.map(([key, name]) => [key, readFileSync(join(check.dir, name))]));
  await assert.rejects(Generator.create(files([['model', 'model.onnx'], ['data', 'model.onnx.data']]), options),
    (e) => e.name === 'ModelFileNotFoundError' && e.code === 'FILE_NOT_FOUND' && /tokenizer/.test(e.message));
  await assert.rejects(Generator.create(join(check.dir, 'no-such-dir'), options), (e) => e.name === 'ModelFileNotFoundError');
  await assert.rejects(Generator.create(files([['model', 'model.onnx'], ['data', 'model.onnx.data'], ['tokenizer', 'generation_config.json']]), options),
    (e) => e.name === 'InvalidModelError' || e.name === 'UnsupportedError');
  await assert.rejects(Generator.create({ model: new Uint8Array([1, 2, 3]) }), (e) => e.name === 'ModelFileNotFoundError' || e.name === 'InvalidModelError');
  await assert.rejects(Generator.create({ weights: new Uint8Array(4) }), /unknown file 'weights'/);
  await assert.rejects(Generator.create(check.dir, { threads: 2 }), /single-threaded/);
  await assert.rejects(Generator.create(check.dir, { maxContext: check.max_context * 2 }),
    (e) => e.name === 'InvalidArgumentError' && /context length/.test(e.message));
});

test('generator: loads from bytes too, and delete() frees it', { skip }, async () => {
  const bytes = Object.fromEntries([['model', 'model.onnx'], ['data', 'model.onnx.data'], ['tokenizer', 'tokenizer.json'],
    ['generationConfig', 'generation_config.json']].map(([key, name]) => [key, new Uint8Array(readFileSync(join(check.dir, name)))]));
  const gen = await Generator.create(bytes, options);
  const r = await gen.generate(check.greedy.prompt, { maxNewTokens: check.greedy.max_new_tokens });
  assert.deepEqual(r.ids, check.greedy.ids);
  gen.delete();
  gen.delete();  // twice is fine
  await assert.rejects(gen.generate(check.greedy.prompt), /deleted/);
  assert.throws(() => gen.encode('x'), /deleted/);
  shared?.delete();
  shared = null;
});
