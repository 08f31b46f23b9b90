"""Plot docs/img/smollm2_perplexity.png from the SmolLM2 perplexity table in docs/ACCURACY.md.

The table is the record (every row names the command that produced it); this script only draws it,
so the plot cannot drift from the numbers. Per pattern, layer set, method and recovery it draws the
best row (earlier rows with less calibration stay in the table as history).

    python3 tools/plot_smollm2_perplexity.py [--accuracy docs/ACCURACY.md] [-o docs/img/smollm2_perplexity.png]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| model | layers pruned | removed | method | perplexity | x dense | export time |"


def read_rows(markdown: str) -> list[dict]:
    lines = markdown.splitlines()
    try:
        start = lines.index(HEADER) + 2
    except ValueError:
        raise SystemExit(f"table header not found in the accuracy file: {HEADER}") from None
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [re.sub(r"\*\*", "", c).strip() for c in line.strip("|").split("|")]
        model, layers, removed, method, ppl, ratio = cells[:6]
        if "superseded" in method or removed in ("0", "-"):
            continue
        rows.append({"model": model, "layers": layers, "removed": float(removed.rstrip("%")) / 100,
                     "method": method, "ratio": float(ratio)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", default=str(ROOT / "docs" / "ACCURACY.md"))
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "smollm2_perplexity.png"))
    args = parser.parse_args()
    rows = read_rows(Path(args.accuracy).read_text(encoding="utf-8"))
    best: dict[tuple, dict] = {}
    for row in rows:
        method = row["method"].lower()
        kind = next((k for k in ("magnitude", "wanda") if k in method), "reconstruct")
        row["kind"], row["recovered"] = kind, "distil" in method
        key = (row["model"], row["layers"], kind, row["recovered"])
        if key not in best or row["ratio"] < best[key]["ratio"]:
            best[key] = row
    rows = list(best.values())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"magnitude": ("tab:gray", "v"), "wanda": ("tab:orange", "s"), "reconstruct": ("tab:blue", "o")}
    for row in rows:
        color, marker = styles[row["kind"]]
        recovered = row["recovered"]
        ax.scatter(row["removed"] * 100 + (0.6 if recovered else 0), row["ratio"], color=color, marker=marker,
                   s=55, edgecolors="black" if recovered else "none", linewidths=1.2, zorder=3)
        label = row["model"].replace("of ", "").replace(" blocks", "")
        if row["layers"].lower().startswith("mlp"):
            label += " (MLP)"
        if recovered:
            label += " + distil"
        ax.annotate(label, (row["removed"] * 100 + (0.6 if recovered else 0), row["ratio"]), fontsize=7,
                    xytext=(5, 2), textcoords="offset points")
    ax.axhline(2.5, color="tab:red", ls="--", lw=1)
    ax.text(0.01, 2.55, "2:4 floor (2.5x)", color="tab:red", fontsize=8, transform=ax.get_yaxis_transform())
    ax.axhline(1.2, color="tab:green", ls="--", lw=1)
    ax.text(0.01, 1.22, "30% group floor (1.2x)", color="tab:green", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([1, 1.2, 1.5, 2, 2.5, 3, 5, 10, 20, 40])
    ax.set_xlim(27, 53)
    ax.set_xlabel("decoder linear weights removed (%)")
    ax.set_ylabel("perplexity / dense perplexity (Persuasion, 8192 tokens)")
    ax.set_title("SmolLM2-135M: pruned vs dense perplexity\n"
                 "(gray: magnitude, orange: Wanda, blue: SparseGPT; outlined: + distillation)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
