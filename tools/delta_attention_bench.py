"""Delta vs dense attention timings in one process (docs/BENCHMARKS.md, "Delta attention").
Usage: EVAL_TEXT=persuasion.txt python3 tools/delta_attention_bench.py DENSE_DIR DELTA_DIR 512,1024,2048 LAYERS REPS

Attention alone: one CausalAttention node with SmolLM2 shapes fed the real q/k/v of a layer (numpy dense forward
of the GGUF on Persuasion), prefill of S tokens in one call and decode steps at context S. End to end: the whole
decoder, dense vs delta directory, prefill of S tokens and decode steps at context S. Medians, alternating."""
import json, os, statistics, sys, time
from pathlib import Path
import numpy as np
import onnx
from onnx import TensorProto, helper
import sparsedge
from sparsedge_export import assets, format as fmt
from sparsedge_export.llm import load_gguf
from sparsedge_export.llm.functions import llm_functions
from sparsedge_export.llm.reference import rms_norm, rope_adjacent_pairs, silu
from sparsedge_export.llm.delta import dense_attention_reference
from tokenizers import Tokenizer

DENSE, DELTA = Path(sys.argv[1]), Path(sys.argv[2])
SIZES = [int(x) for x in sys.argv[3].split(',')]
LAYERS = [int(x) for x in sys.argv[4].split(',')]
REPS = int(sys.argv[5]) if len(sys.argv) > 5 else 3
DECODE_STEPS = 16
res = {'attention': [], 'end_to_end': []}

def attn_model(attrs):
    node = helper.make_node(fmt.CAUSAL_ATTENTION, ['q', 'k', 'v', 'past_k', 'past_v'], ['out', 'present_k', 'present_v'],
                            name='attn', domain=fmt.DOMAIN, **attrs)
    vi = lambda n, h: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 'T' if n in 'qkv' else 'P', h, 64])
    g = helper.make_graph([node], 'a', [vi('q', 9), vi('k', 3), vi('v', 3), vi('past_k', 3), vi('past_v', 3)],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ('out', 'present_k', 'present_v')])
    m = helper.make_model(g, functions=llm_functions(), ir_version=fmt.IR_VERSION,
                          opset_imports=[helper.make_opsetid('', fmt.ONNX_OPSET), helper.make_opsetid(fmt.DOMAIN, 1)])
    return m.SerializeToString()

def layer_attrs(d):
    m = onnx.load(str(d / 'model.onnx'), load_external_data=False)
    return [{a.name: helper.get_attribute_value(a) for a in n.attribute} for n in m.graph.node if n.op_type == 'CausalAttention']

dense_attrs, delta_attrs = layer_attrs(DENSE), layer_attrs(DELTA)
tok = Tokenizer.from_file(str(DENSE / 'tokenizer.json'))
ids = np.asarray(tok.encode(open(os.environ.get('EVAL_TEXT', 'persuasion.txt')).read()).ids[:max(SIZES) + DECODE_STEPS], np.int64)

# real q/k/v of the chosen layers (dense numpy forward)
gm = load_gguf(assets.smollm2_gguf(), progress=False)
c = gm.config; T = len(ids); pos = np.arange(T); x = gm.embedding[ids]; qkv = {}
for i in range(max(LAYERS) + 1):
    h = rms_norm(x, gm.layer(i, 'attn_norm'), c.rms_eps)
    q = rope_adjacent_pairs((h @ gm.layer(i, 'attn_q').T).reshape(T, 9, 64), pos, c.rope_base)
    k = rope_adjacent_pairs((h @ gm.layer(i, 'attn_k').T).reshape(T, 3, 64), pos, c.rope_base)
    v = (h @ gm.layer(i, 'attn_v').T).reshape(T, 3, 64)
    if i in LAYERS: qkv[i] = (q, k, v)
    x = x + dense_attention_reference(q, k, v, 0.125).reshape(T, -1) @ gm.layer(i, 'attn_output').T
    h = rms_norm(x, gm.layer(i, 'ffn_norm'), c.rms_eps)
    x = x + (silu(h @ gm.layer(i, 'ffn_gate').T) * (h @ gm.layer(i, 'ffn_up').T)) @ gm.layer(i, 'ffn_down').T
print('captured q/k/v', flush=True)

def attn_run(sess, q, k, v, S):
    """prefill S tokens (timed), then DECODE_STEPS decode steps from that cache (each timed): context S..S+steps."""
    e = np.zeros((1, 0, 3, 64), np.float32)
    t0 = time.perf_counter()
    _, pk, pv = sess.run(None, {'q': q[None, :S], 'k': k[None, :S], 'v': v[None, :S], 'past_k': e, 'past_v': e})
    tp = time.perf_counter() - t0
    steps = []
    for t in range(S, S + DECODE_STEPS):
        t0 = time.perf_counter()
        _, pk, pv = sess.run(None, {'q': q[None, t:t+1], 'k': k[None, t:t+1], 'v': v[None, t:t+1], 'past_k': pk, 'past_v': pv})
        steps.append(time.perf_counter() - t0)
    st = sess.get_stats(); sess.reset_stats()
    return tp, statistics.median(steps), 1 - st['attention.macs_done'] / st['attention.macs_dense']

for S in SIZES:
    for L in LAYERS:
        q, k, v = (a.astype(np.float32) for a in qkv[L])
        sess = {'dense': sparsedge.InferenceSession(attn_model(dense_attrs[L]), threads=1),
                'delta': sparsedge.InferenceSession(attn_model(delta_attrs[L]), threads=1)}
        r = {n: {'prefill': [], 'decode': [], 'sparsity': 0} for n in sess}
        for _ in range(REPS):
            for n, s in sess.items():
                tp, td, sp = attn_run(s, q, k, v, S)
                r[n]['prefill'].append(tp); r[n]['decode'].append(td); r[n]['sparsity'] = sp
        rec = {'S': S, 'layer': L, **{f'{n}_{k_}_ms': round(1e3 * statistics.median(r[n][k_]), 3) for n in sess for k_ in ('prefill', 'decode')},
               'delta_sparsity': round(r['delta']['sparsity'], 4)}
        rec['prefill_speedup'] = round(rec['dense_prefill_ms'] / rec['delta_prefill_ms'], 3)
        rec['decode_speedup'] = round(rec['dense_decode_ms'] / rec['delta_decode_ms'], 3)
        print(json.dumps(rec), flush=True); res['attention'].append(rec)

def e2e_run(sess, S):
    empty = np.zeros((1, 0, 3, 64), np.float32)
    names = [i.name for i in sess.get_inputs() if i.name.startswith('past_')]
    onames = [o.name for o in sess.get_outputs()]
    past = {n: empty for n in names}
    t0 = time.perf_counter()
    outs = sess.run(None, {'input_ids': ids[None, :S], 'position_ids': pos[None, :S], **past})
    tp = time.perf_counter() - t0
    past = {n: outs[onames.index(n.replace('past_', 'present_'))] for n in names}
    steps = []
    for t in range(S, S + DECODE_STEPS):
        t0 = time.perf_counter()
        outs = sess.run(None, {'input_ids': ids[None, t:t+1], 'position_ids': pos[None, t:t+1], **past})
        steps.append(time.perf_counter() - t0)
        past = {n: outs[onames.index(n.replace('past_', 'present_'))] for n in names}
    return tp, statistics.median(steps)

sess = {'dense': sparsedge.InferenceSession(str(DENSE / 'model.onnx'), threads=1),
        'delta': sparsedge.InferenceSession(str(DELTA / 'model.onnx'), threads=1)}
for S in SIZES:
    r = {n: {'prefill': [], 'decode': []} for n in sess}
    for _ in range(max(1, REPS - 1)):
        for n, s in sess.items():
            tp, td = e2e_run(s, S)
            r[n]['prefill'].append(tp); r[n]['decode'].append(td)
    rec = {'S': S, **{f'{n}_{k_}_ms': round(1e3 * statistics.median(r[n][k_]), 2) for n in sess for k_ in ('prefill', 'decode')}}
    rec['prefill_speedup'] = round(rec['dense_prefill_ms'] / rec['delta_prefill_ms'], 3)
    rec['decode_speedup'] = round(rec['dense_decode_ms'] / rec['delta_decode_ms'], 3)
    print(json.dumps(rec), flush=True); res['end_to_end'].append(rec)
json.dump(res, open('delta_attention_bench.json', 'w'), indent=1)
