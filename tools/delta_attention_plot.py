# Usage: python3 tools/delta_attention_plot.py OUT.png SWEEP.jsonl  (docs/ACCURACY.md, "Delta attention")
import json, os, sys
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
rows = [json.loads(l) for l in open(sys.argv[2])]
dense = [r for r in rows if r['W'] == 0][0]['ppl']
fig, ax = plt.subplots(figsize=(7, 4.5))
marks = {16: 'v', 32: 'o', 64: 's'}
for W in sorted({r['W'] for r in rows if r['W']}):
    pts = [r for r in rows if r['W'] == W]
    for thp, color in ((0.0, 'tab:gray'), (0.0005, 'tab:purple'), (0.001, 'tab:blue'), (0.002, 'tab:orange'), (0.003, 'tab:red')):
        sel = [r for r in pts if abs(r['thp'] - thp) < 1e-9]
        if not sel: continue
        ax.scatter([100 * r['sparsity'] for r in sel], [100 * (r['ppl'] / dense - 1) for r in sel], marker=marks.get(W, 'x'),
                   color=color, label=f'W={W}, θp={thp:g}')
        for r in sel:
            ax.annotate(f"a={r['a']:g}", (100 * r['sparsity'], 100 * (r['ppl'] / dense - 1)), fontsize=7,
                        xytext=(3, 3), textcoords='offset points')
ax.axhline(2.0, color='k', lw=0.8, ls='--'); ax.axvline(55, color='k', lw=0.8, ls='--')
ax.text(56, 1.88, 'floor: ≥ 55% skipped, ≤ +2% perplexity', fontsize=8); ax.set_ylim(-0.3, 2.3)
ax.set_xlabel('attention MACs skipped (prefill + decode), %')
ax.set_ylabel('perplexity increase over dense, %')
ax.set_title('SmolLM2-135M, Persuasion, 2048 tokens (4 windows of 512)')
ax.legend(fontsize=7, loc='upper left')
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[1], dpi=110)
print('wrote', sys.argv[1])
