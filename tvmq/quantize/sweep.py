"""Accuracy against bits (8 down to 1) for several quantizers: the small-scale seed 004 Figure 7.9."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .evaluate import top1
from .onnx_model import QuantSpec, quantize_model

BITS = tuple(range(8, 0, -1))


def sweep_specs(methods, inits, per_channel: bool, base: QuantSpec) -> list[QuantSpec]:
    """One spec per curve: each k-means init, then uniform and fixed as configured in ``base``."""
    specs = []
    for m in methods:
        if m == "kmeans":
            specs += [replace(base, method="kmeans", init=i, per_channel=per_channel) for i in inits]
        elif m == "uniform":
            specs.append(replace(base, method="uniform", per_channel=per_channel))
        else:
            specs.append(replace(base, method="fixed", per_channel=False, frac=None))
    return specs


def run_sweep(model, x, y, specs: list[QuantSpec], bits=BITS, progress=None) -> dict:
    """Top-1 and whole-model error/size for every spec at every bit width.

    Returns ``{"float_top1", "bits", "series": {label: [row per bits]}}``; a
    row has bits, top1, nrmse, sqnr_db, ratio_formula, ratio_packed.
    """
    out = dict(float_top1=top1(model, x, y), bits=list(bits), samples=int(len(y)), series={})
    for spec in specs:
        rows = []
        for b in bits:
            mq = quantize_model(model, replace(spec, bits=b))
            t = mq.total()
            rows.append(dict(bits=b, top1=top1(mq.model, x, y), nrmse=t["nrmse"], sqnr_db=t["sqnr_db"],
                             ratio_formula=t["ratio_formula"], ratio_packed=t["ratio_packed"]))
            if progress:
                progress(spec, rows[-1])
        out["series"][spec.label() + ("-perchannel" if spec.per_channel else "")] = rows
    return out


def table(result: dict) -> str:
    """Markdown table: one row per bit width, one top-1 column per curve."""
    labels = list(result["series"])
    head = "| bits | " + " | ".join(labels) + " |\n|---:|" + "---:|" * len(labels) + "\n"
    body = ""
    for i, b in enumerate(result["bits"]):
        body += f"| {b} | " + " | ".join(f"{result['series'][k][i]['top1']:.4f}" for k in labels) + " |\n"
    return head + body + "| float | " + " | ".join(f"{result['float_top1']:.4f}" for _ in labels) + " |\n"


def plot(result: dict, path, title: str = "Top-1 vs bits") -> Path:
    """Two panels: top-1 against bits, and whole-model weight NRMSE against bits (log scale)."""
    import matplotlib  # lazy: matplotlib is heavy and stays out of start-up

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and stays out of start-up

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, rows in result["series"].items():
        b = [r["bits"] for r in rows]
        ax1.plot(b, [100 * r["top1"] for r in rows], marker="o", label=label)
        ax2.semilogy(b, [max(r["nrmse"], 1e-9) for r in rows], marker="o", label=label)
    f1 = 100 * result["float_top1"]
    ax1.axhline(f1, color="k", ls="--", lw=1, label=f"float ({f1:.1f}%)")
    ax1.set(xlabel="bits per weight", ylabel="top-1 accuracy (%)", title=title, ylim=(0, 100))
    ax2.set(xlabel="bits per weight", ylabel="weight NRMSE (RMSE / range)", title="Weight error vs bits")
    for ax in (ax1, ax2):
        ax.set_xticks(result["bits"])
        ax.invert_xaxis()  # 8 bits on the left, as compression grows to the right
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.tmp-{os.getpid()}{p.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, p)
    return p
