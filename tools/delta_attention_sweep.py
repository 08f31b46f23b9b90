"""Sweep delta-attention settings on the sparsedge runtime: variants of one exported model (thresholds rescaled).
Usage: EVAL_TEXT=persuasion.txt VARIANTS_DIR=/tmp/v python3 tools/delta_attention_sweep.py EXPORT_DIR LEVEL NTOKENS '[[W, a, thp], ...]' OUT.jsonl
(EXPORT_DIR written by `export-llm --delta-attention --delta-threshold LEVEL`; W = 0 is dense.)
"""
import json, math, os, sys, time
from pathlib import Path
import numpy as np
import onnx
from sparsedge_export.llm.delta import DeltaConfig, apply_delta_attention
from sparsedge_export.llm.perplexity import window_nll
from tokenizers import Tokenizer
import sparsedge

BASE = Path(sys.argv[1])          # exported with --delta-threshold LEVEL0
LEVEL0 = float(sys.argv[2])
NTOK = int(sys.argv[3])
configs = json.loads(sys.argv[4])  # [[W, a, thp], ...]; W=0 -> dense
out = sys.argv[5]
meta = {p.key: p.value for p in onnx.load(str(BASE / 'model.onnx'), load_external_data=False).metadata_props}
nodes = [n for n in onnx.load(str(BASE / 'model.onnx'), load_external_data=False).graph.node if n.op_type == 'CausalAttention']
rms = [[x / LEVEL0 for x in next(a.floats for a in n.attribute if a.name == 'delta_q_thresholds')] for n in nodes]
tok = Tokenizer.from_file(str(BASE / 'tokenizer.json'))
text = open(os.environ.get('EVAL_TEXT', 'persuasion.txt')).read()
ids = np.asarray(tok.encode(text).ids[:NTOK], np.int64)
windows = [ids[i:i + 512] for i in range(0, len(ids), 512)]
for W, a, thp in configs:
    d = Path(os.environ.get('VARIANTS_DIR', '.')) / f'var_{W}_{a}_{thp}'
    d.mkdir(exist_ok=True)
    for f in ('model.onnx.data', 'tokenizer.json', 'generation_config.json'):
        if not (d / f).exists():
            os.symlink(BASE / f, d / f)
    m = onnx.load(str(BASE / 'model.onnx'), load_external_data=False)
    if W == 0:
        for n in m.graph.node:
            if n.op_type == 'CausalAttention':
                keep = [x for x in n.attribute if not x.name.startswith('delta_')]
                del n.attribute[:]; n.attribute.extend(keep)
        onnx.save(m, str(d / 'model.onnx'))
    else:
        onnx.save(m, str(d / 'model.onnx'))
        apply_delta_attention(d / 'model.onnx', DeltaConfig(window=W, q_thresholds=[[a * x for x in r] for r in rms], p_threshold=thp, level=a))
    t0 = time.time()
    s = sparsedge.InferenceSession(str(d / 'model.onnx'), threads=1)
    empty = np.zeros((1, 0, 3, 64), np.float32)
    past = {i.name: empty for i in s.get_inputs() if i.name.startswith('past_')}
    tot = cnt = 0.0
    s.reset_stats()
    for w in windows:
        lg = s.run(['logits'], {'input_ids': w[None], 'position_ids': np.arange(len(w))[None], **past})[0][0]
        l = window_nll(lg, w); tot += l.sum(); cnt += l.size
    st = s.get_stats()
    sp = 1 - st.get('attention.macs_done', 0) / st.get('attention.macs_dense', 1)
    rec = {'W': W, 'a': a, 'thp': thp, 'ntok': NTOK, 'ppl': round(math.exp(tot / cnt), 4), 'sparsity': round(sp, 4),
           'state_bytes': st.get('attention.state_bytes'), 'sec': round(time.time() - t0)}
    print(json.dumps(rec), flush=True)
    with open(out, 'a') as f:
        f.write(json.dumps(rec) + '\n')
