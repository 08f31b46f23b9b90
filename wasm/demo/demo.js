// Demo page logic: preprocessing (EfficientNet-Lite0: shorter side 256,
// centre crop 224, (x - 127) / 128, NCHW RGB), sparsedge run, optional
// onnxruntime-web run of the same model for the latency comparison; and the
// Generate panel: text streamed from an LLM decoder directory (Generator).
import { Generator, InferenceSession } from '../dist/sparsedge.mjs';

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => { $('status').textContent = text; $('status').className = error ? 'error' : ''; };
let modelBytes = null;
let image = null;
let classes = null;

async function loadClasses() {
  try {
    const response = await fetch('../dist/imagenet_classes.json');
    if (response.ok) classes = await response.json();
  } catch (e) { /* class ids only */ }
}

async function loadOrt() {
  try {
    const ort = await import('../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs');
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = new URL('../node_modules/onnxruntime-web/dist/', import.meta.url).href;
    return ort;
  } catch (e) {
    return null;  // not installed (npm install in wasm/): sparsedge only
  }
}

function preprocess(img) {
  const canvas = $('canvas');
  const ctx = canvas.getContext('2d');
  const scale = 256 / Math.min(img.width, img.height);
  const w = img.width * scale, h = img.height * scale;
  ctx.drawImage(img, (224 - w) / 2, (224 - h) / 2, w, h);
  const { data } = ctx.getImageData(0, 0, 224, 224);
  const out = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < 224 * 224; ++i) {
    for (let c = 0; c < 3; ++c) out[c * 224 * 224 + i] = (data[4 * i + c] - 127) / 128;
  }
  return { data: out, dims: [1, 3, 224, 224] };
}

function top5(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e, i) => [i, e / sum]).sort((a, b) => b[1] - a[1]).slice(0, 5);
}

async function timeRuns(fn, n = 5) {
  await fn();  // warm-up
  const times = [];
  for (let i = 0; i < n; ++i) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[n >> 1];
}

async function classify() {
  $('run').disabled = true;
  try {
    status('Loading the model…');
    const session = await InferenceSession.create(modelBytes, { threads: 1 });
    const input = preprocess(image);
    const feeds = { [session.inputNames[0]]: input };
    const outputs = await session.run(feeds);
    const logits = outputs[session.outputNames[0]].data;
    const rows = top5(logits).map(([id, p]) =>
      `<tr class="prediction" data-class="${id}"><td>${id}: ${classes ? classes[id].split(',')[0] : ''}</td><td>${(100 * p).toFixed(1)}%</td></tr>`);
    $('top5').tBodies[0].innerHTML = rows.join('');
    status('Timing…');
    const latency = [['sparsedge', await timeRuns(() => session.run(feeds))]];
    await session.release();
    const ort = await loadOrt();
    if (ort) {
      try {
        const ortSession = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] });
        const tensor = new ort.Tensor('float32', input.data, input.dims);
        latency.push(['onnxruntime-web', await timeRuns(() => ortSession.run({ [ortSession.inputNames[0]]: tensor }))]);
        await ortSession.release();
      } catch (e) {
        latency.push([`onnxruntime-web: ${e.message}`, NaN]);
      }
    }
    $('latency').tBodies[0].innerHTML = latency.map(([name, ms]) =>
      `<tr><td>${name}</td><td>${Number.isNaN(ms) ? '' : ms.toFixed(1) + ' ms'}</td></tr>`).join('');
    status('Done.');
  } catch (e) {
    status(`${e.name}: ${e.message}`, true);
  } finally {
    $('run').disabled = false;
  }
}

function ready() { $('run').disabled = !(modelBytes && image); }

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load image ${url}`));
    img.src = url;
  });
}

$('model-file').addEventListener('change', async (e) => {
  modelBytes = new Uint8Array(await e.target.files[0].arrayBuffer());
  ready();
});
$('image-file').addEventListener('change', async (e) => {
  image = await loadImage(URL.createObjectURL(e.target.files[0]));
  ready();
});
$('run').addEventListener('click', classify);

// ---------------------------------------------------------------- Generate
const genStatus = (text, error = false) => { $('gen-status').textContent = text; $('gen-status').className = error ? 'error' : ''; };
let generator = null;  // {url, maxContext, gen}
let genMaxContext = 0;  // KV cache positions (0 = the model's context, at most 2048); ?max_context=N

async function loadGenerator(url, maxContext) {
  if (generator && generator.url === url && generator.maxContext === maxContext) return generator.gen;
  if (generator) generator.gen.delete();
  generator = null;
  genStatus(`Loading ${url}…`);
  const t0 = performance.now();
  const gen = await Generator.create(url, maxContext ? { maxContext } : {});
  generator = { url, maxContext, gen };
  genStatus(`Loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (KV cache ${(gen.memory.kvCacheBytes / 1e6).toFixed(1)} MB).`);
  return gen;
}

async function generateText() {
  $('gen-run').disabled = true;
  const output = $('gen-output');
  output.textContent = '';
  $('gen-stats').textContent = '';
  try {
    const url = $('gen-dir').value.trim();
    if (!url) throw new Error('give the URL of a decoder directory');
    const gen = await loadGenerator(url, genMaxContext);
    genStatus('Generating…');
    const t0 = performance.now();
    let first = null;
    const result = await gen.generate($('gen-prompt').value, {
      maxNewTokens: Number($('gen-tokens').value),
      temperature: Number($('gen-temperature').value),
      seed: Number($('gen-seed').value),
      chat: $('gen-chat').checked,
      onToken: (piece) => {
        first ??= performance.now();
        output.textContent += piece;
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const decode = first === null || result.ids.length < 2 ? '' :
      `, ${((result.ids.length - 1) / ((performance.now() - first) / 1000)).toFixed(1)} tokens/s after the first`;
    $('gen-stats').textContent = `${result.promptTokens} prompt tokens, ${result.ids.length} new (${result.stoppedBy}) ` +
      `in ${seconds.toFixed(2)} s${decode}`;
    genStatus('Done.');
  } catch (e) {
    genStatus(`${e.name}: ${e.message}`, true);
  } finally {
    $('gen-run').disabled = false;
  }
}

$('gen-run').addEventListener('click', () => generateText());

await loadClasses();
// ?model=URL&image=URL: files served next to the page (also used by the page test).
// ?llm=URL&prompt=TEXT&max_new_tokens=N&max_context=N: generate at load.
const params = new URLSearchParams(location.search);
if (params.get('llm')) {
  $('gen-dir').value = params.get('llm');
  if (params.get('prompt') !== null) $('gen-prompt').value = params.get('prompt');
  if (params.get('max_new_tokens')) $('gen-tokens').value = params.get('max_new_tokens');
  genMaxContext = Number(params.get('max_context') || 0);
  generateText();
}
try {
  if (params.get('model')) modelBytes = new Uint8Array(await (await fetch(params.get('model'))).arrayBuffer());
  if (params.get('image')) image = await loadImage(params.get('image'));
  ready();
  if (modelBytes && image) await classify();
} catch (e) {
  status(`${e.name}: ${e.message}`, true);
}
