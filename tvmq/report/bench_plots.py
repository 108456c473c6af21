"""The bench's PNG plots (matplotlib): rates per layer and variant, ratios, tuning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


_COLORS = {}


def _color(name):
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and only plotting needs it

    if name not in _COLORS:
        cyc = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors + plt.get_cmap("Set1").colors
        _COLORS[name] = cyc[len(_COLORS) % len(cyc)]
    return _COLORS[name]


def _order(rows):
    seen = []
    for r in rows:
        if r["variant"] not in seen:
            seen.append(r["variant"])
    return seen


def _bars(ax, rows, layers, names, key, title, ylabel, hline=None, hlabel=None, hlines=()):
    n = max(1, len(names))
    width = 0.8 / n
    x = np.arange(len(layers))
    for i, name in enumerate(names):
        vals, missing = [], []
        for wl in layers:
            r = next((r for r in rows if r["workload"] == wl and r["variant"] == name), None)
            ok = r is not None and r.get(key) is not None
            vals.append(r[key] if ok else 0.0)
            missing.append(r is not None and not ok)
        xs = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(xs, vals, width, label=name, color=_color(name))
        if len(layers) * n <= 60:  # values on the bars while they stay legible
            ax.bar_label(bars, labels=[f"{v:.3g}" if v else "" for v in vals], rotation=90, fontsize=6, padding=2)
        for xi, miss in zip(xs, missing):
            if miss:  # measured but failed or unverified: say so instead of a silent zero
                ax.text(xi, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
    if hline is not None:
        ax.axhline(hline, color="k", ls="--", lw=1, label=hlabel)
    for y, ls, lab in hlines:
        ax.axhline(y, color="k", ls=ls, lw=1, label=lab)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the value labels
    ax.set_xticks(x, layers, rotation=20 if len(layers) > 6 else 0, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def make_plots(out: Path, rows, peak, meta, curves) -> list[Path]:
    import matplotlib  # lazy: matplotlib is heavy and only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and only plotting needs it
    from matplotlib.ticker import MaxNLocator  # lazy: matplotlib is heavy and only plotting needs it

    emu = " (EMULATED)" if meta["runner"] == "rpc-emulated" else ""
    t = max(meta["threads"])
    rt = [r for r in rows if r["threads"] == t]
    layers = list(dict.fromkeys(r["workload"] for r in rows))
    names = _order(rt)
    pk = ((peak.get("fp32") or {}).get(t) or {}).get("gflops")
    made = []
    wide = max(8.0, 1.2 + 0.28 * len(layers) * max(1, len(names)))

    fig, ax = plt.subplots(figsize=(min(wide, 22), 5))
    pk8 = ((peak.get("int8") if isinstance(peak.get("int8"), dict) else {}).get(t) or {}).get("gops")
    _bars(ax, rt, layers, names, "gflops", f"{meta['target']}{emu}: GFLOPS (GOPS for int) per layer, {t} thread(s)",
          "GFLOPS / GOPS", pk, f"measured fp32 peak {pk:.0f}" if pk else None,
          [(pk8, ":", f"measured int8 (VNNI) peak {pk8:.0f}")] if pk8 else ())
    ax.legend(fontsize=7, ncol=min(6, len(names) + 1), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    made.append(out / "gflops.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)

    fig, axs = plt.subplots(2, 1, figsize=(min(wide, 22), 8.5))
    for ax, key, base in ((axs[0], "vs_float", "tvmq float"), (axs[1], "vs_im2col", "tvmq im2col (float)")):
        nm = [n for n in names if any(r["variant"] == n and r.get(key) for r in rt)]
        _bars(ax, rt, layers, nm, key, f"speedup over {base} (time ratio, {t} thread(s)){emu}", "x faster", 1.0,
              "1x")
    h, lab = axs[0].get_legend_handles_labels()
    fig.legend(h, lab, fontsize=7, ncol=min(8, len(lab)), loc="lower center")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    made.append(out / "speedup.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)

    cl = list(dict.fromkeys(c["workload"] for c in curves))
    ncol = min(3, max(1, len(cl)))
    nrow = max(1, -(-len(cl) // ncol))
    fig, axs = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
    styles = {"xgb": "-", "random": "--", "grid": ":", "metaschedule": "-."}
    for i, wl in enumerate(cl):
        ax = axs[i // ncol][i % ncol]
        for c in (c for c in curves if c["workload"] == wl):
            lab = f"{c['variant']} ({c['tuner']})"
            if len(c["trials"]) == 1:
                ax.plot(c["trials"], c["best_gflops"], marker="*", ms=11, ls="", color=_color(c["variant"]), label=lab)
            else:
                ax.plot(c["trials"], c["best_gflops"], styles.get(c["tuner"], "-"), color=_color(c["variant"]),
                        label=lab, lw=1.5)
        ax.set_title(f"{wl}: best so far", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial")
        ax.set_ylabel("GFLOPS / GOPS")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for j in range(len(cl), nrow * ncol):
        axs[j // ncol][j % ncol].axis("off")
    if not cl:
        axs[0][0].text(0.5, 0.5, "no tuning records for these layers\n(bench --from-logs DIR, or --trials N)",
                       ha="center", va="center")
        axs[0][0].axis("off")
    fig.suptitle(f"tuning curves from the logs{emu} (MetaSchedule: one point at its trial budget)", fontsize=10)
    fig.tight_layout()
    made.append(out / "tuning_curves.png")
    fig.savefig(made[-1], dpi=100)
    plt.close(fig)

    if len(meta["threads"]) > 1:
        ncol = min(3, len(layers))
        nrow = -(-len(layers) // ncol)
        fig, axs = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
        for i, wl in enumerate(layers):
            ax = axs[i // ncol][i % ncol]
            for n in _order(rows):
                pts = sorted((r["threads"], r["gflops"]) for r in rows
                             if r["workload"] == wl and r["variant"] == n and r.get("gflops"))
                if pts:
                    ax.plot(*zip(*pts), marker="o", color=_color(n), label=n)
            pts = sorted((th, e["gflops"]) for th, e in (peak.get("fp32") or {}).items() if e.get("gflops"))
            if pts:
                ax.plot(*zip(*pts), "k--", label="fp32 peak")
            ax.set_xticks(meta["threads"])
            ax.set_title(wl, fontsize=10)
            ax.set_xlabel("threads")
            ax.set_ylabel("GFLOPS / GOPS")
            ax.grid(alpha=0.3)
        for j in range(len(layers), nrow * ncol):
            axs[j // ncol][j % ncol].axis("off")
        from matplotlib.lines import Line2D  # lazy: matplotlib is heavy and only plotting needs it

        handles = [Line2D([], [], color=_color(n), marker="o", label=n) for n in _order(rows)]
        handles.append(Line2D([], [], color="k", ls="--", label="measured fp32 peak"))
        fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(8, len(handles)))
        fig.suptitle(f"thread scaling: GFLOPS (GOPS for int) against TVM/BLAS/onnxruntime threads{emu}", fontsize=10)
        fig.tight_layout(rect=(0, 0.07 if nrow == 1 else 0.04, 1, 1))
        made.append(out / "threads.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)

    bw = ((peak.get("bandwidth") or {}).get(t) or {}).get("gbps")
    fig, ax = plt.subplots(figsize=(9, 6))
    pts = [r for r in rt if r.get("gflops") and r.get("intensity")]
    xs = [r["intensity"] for r in pts] or [1.0]
    lo, hi = min(xs + [1.0]) / 3, max(xs + [1000.0]) * 3
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    if pk and bw:
        ax.plot(grid, np.minimum(pk, bw * grid), "k-", lw=2, label=f"roofline: {pk:.0f} GFLOPS, {bw:.1f} GB/s copy")
    elif pk:
        ax.axhline(pk, color="k", lw=2, label=f"fp32 peak {pk:.0f}")
    i8 = peak.get("int8") if isinstance(peak.get("int8"), dict) else {}
    pk8 = (i8.get(t) or {}).get("gops")
    if pk8 and bw:
        ax.plot(grid, np.minimum(pk8, bw * grid), "k--", lw=1.5, label=f"int8 (VNNI) roof: {pk8:.0f} GOPS")
    markers = "os^Dv<>phX*"
    for i, wl in enumerate(layers):
        for r in (r for r in pts if r["workload"] == wl):
            ax.scatter(r["intensity"], r["gflops"], color=_color(r["variant"]), marker=markers[i % len(markers)],
                       s=40, edgecolors="k", linewidths=0.4)
    from matplotlib.lines import Line2D  # lazy: matplotlib is heavy and only plotting needs it

    handles = [Line2D([], [], color=_color(n), marker="o", ls="", label=n) for n in names]
    handles += [Line2D([], [], color="gray", marker=markers[i % len(markers)], ls="", label=wl)
                for i, wl in enumerate(layers)]
    h0, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h0 + handles, fontsize=7, loc="lower right", ncol=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (ops per byte of inputs + weights + output)")
    ax.set_ylabel("GFLOPS / GOPS")
    ax.set_title(f"roofline, {t} thread(s){emu}" + ("" if pk8 else " (int8 peak not measured: one fp32 roof)"),
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    made.append(out / "roofline.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)
    return made
