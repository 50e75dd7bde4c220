"""fa3-bench's plots, in the style of the FA3 paper's figures.

usage: plot.py RESULTS.json  (fa3-bench runs it with `python3 -c`)

One PNG per (dtype, pass) next to the JSON file: one panel per (head dim,
mask), TFLOPs/s against sequence length, one bar per implementation with
its value on top, and the measured GEMM ceiling as a dashed line. Prints
the paths it wrote. Exits with 3 and one line when matplotlib is missing.
"""

import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"matplotlib is not importable ({e})", file=sys.stderr)
    sys.exit(3)

# (JSON name, legend, colour), ours first.
IMPLEMENTATIONS = [
    ("fa3-rs", "fa3-rs", "#d62728"),
    ("fa3", "FlashAttention-3 (official, PyTorch build)", "#ff7f0e"),
    ("fa3-jax", "FlashAttention-3 (official, JAX build)", "#8c564b"),
    ("cudnn", "cuDNN (PyTorch SDPA)", "#2ca02c"),
    ("flash", "FlashAttention-2 (PyTorch SDPA)", "#1f77b4"),
    ("efficient", "Memory-efficient (PyTorch SDPA)", "#9467bd"),
    ("fa3-rs-no-pingpong", "fa3-rs without pingpong", "#ff9896"),
    ("fa3-rs-no-overlap", "fa3-rs without intra-warpgroup overlap", "#ffbb78"),
    ("fa3-rs-plain", "fa3-rs without either", "#c7c7c7"),
]
PASS_NAMES = {"fwd": "forward", "bwd": "backward", "fwdbwd": "forward + backward"}


def seqlen_label(s):
    return f"{s // 1024}k" if s % 1024 == 0 else str(s)


def ceiling(run, dtype):
    gemm = "fp8" if dtype == "fp8" else "bf16"
    for c in run["ceilings"]:
        if c["dtype"] == gemm and c["status"] == "timed":
            return c["tflops"]
    return None


def panel(ax, configs, run, dtype):
    seqlens = sorted({c["seqlen_q"] for c in configs})
    present = [i for i in IMPLEMENTATIONS if any(tflops(c, i[0]) for c in configs)]
    width = 0.8 / max(len(present), 1)
    for k, (name, legend, colour) in enumerate(present):
        xs, ys = [], []
        for x, s in enumerate(seqlens):
            value = next((tflops(c, name) for c in configs if c["seqlen_q"] == s), None)
            if value:
                xs.append(x - 0.4 + width * (k + 0.5))
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=legend, color=colour)
        ax.bar_label(bars, fmt="%.0f", fontsize=6, padding=1)
    top = ceiling(run, dtype)
    if top:
        ax.axhline(top, color="grey", linestyle="--", linewidth=0.8, label=f"cuBLAS GEMM ({top:.0f})")
    ax.set_xticks(range(len(seqlens)), [seqlen_label(s) for s in seqlens])
    ax.set_xlabel("Sequence length")
    ax.set_ylabel("Speed (TFLOPs/s)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", linewidth=0.3)


def tflops(config, name):
    for r in config["results"]:
        if r["implementation"] == name and r["status"] == "timed":
            return r["tflops"]
    return None


def main(path):
    with open(path) as f:
        run = json.load(f)
    stem = os.path.splitext(path)[0]
    groups = {}
    for c in run["configs"]:
        groups.setdefault((c["dtype"], c["pass"]), []).append(c)
    for (dtype, pass_), configs in groups.items():
        panels = list(dict.fromkeys((c["head_dim"], c["causal"]) for c in configs))
        hdims = list(dict.fromkeys(d for d, _ in panels))
        masks = list(dict.fromkeys(m for _, m in panels))
        fig, axes = plt.subplots(
            len(masks), len(hdims), figsize=(4.5 * len(hdims), 3.4 * len(masks)), squeeze=False
        )
        for (hdim, causal) in panels:
            ax = axes[masks.index(causal)][hdims.index(hdim)]
            mine = [c for c in configs if (c["head_dim"], c["causal"]) == (hdim, causal)]
            panel(ax, mine, run, dtype)
            mask = "causal" if causal else "non-causal"
            ax.set_title(f"{PASS_NAMES[pass_].capitalize()}, {mask}, head dim {hdim}", fontsize=9)
        legend = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        # At most four entries a row: with the ablation builds there are 7+.
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(max(len(legend), 1), 4), fontsize=8, frameon=False)
        date = run["started_utc"][:10]
        fig.suptitle(f"Attention {PASS_NAMES[pass_]} speed, {dtype}, {run['gpu']['name']}, {date}")
        fig.tight_layout(rect=(0, 0.03 * (1 + (len(legend) - 1) // 4), 1, 1))
        out = f"{stem}-{dtype}-{pass_}.png"
        fig.savefig(out, dpi=150)
        plt.close(fig)
        print(out)


main(sys.argv[1])
