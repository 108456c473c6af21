"""The search space drawn from tuning records: performance per knob value, two-knob heatmaps,
tuning curves per tuner, and which knobs matter (eta-squared).

The numbers (``per_knob``, ``heatmap``, ``curves``, ``importance``) are plain Python and tested
without a display; the ``plot_*`` functions draw them with matplotlib's Agg backend.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import records as R


def _value(v) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def samples(recs: list[dict], workload, space=None) -> list[tuple[dict, float]]:
    """(config, GFLOPS) of every timed trial of tvmq's tuners (not re-times); configs completed to ``space``
    (knobs added since a record was made take their first value) when given."""
    fix = space.complete if space is not None else dict
    return [(fix(r["config"]), R.gflops(r, workload)) for r in R.ok(recs) if not r.get("retime")]  # trials only


def knobs(data: list[tuple[dict, float]]) -> list[str]:
    """Knobs that take more than one value in the records."""
    names = sorted({k for cfg, _ in data for k in cfg})
    return [k for k in names if len({_value(c.get(k)) for c, _ in data}) > 1]


def per_knob(data, knob: str) -> dict[str, list[float]]:
    """GFLOPS of the records, grouped by the value of ``knob``."""
    out = defaultdict(list)
    for cfg, g in data:
        out[_value(cfg.get(knob))].append(g)
    return dict(sorted(out.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def importance(data) -> list[tuple[str, float, int]]:
    """Knobs ranked by eta-squared: the share of the GFLOPS variance between the knob's value groups
    (one-way variance split; knobs correlated by the tuner's sampling share credit). (knob, eta2, values)."""
    g = np.array([x for _, x in data], dtype=float)
    total = float(((g - g.mean()) ** 2).sum()) if len(g) else 0.0
    out = []
    for k in knobs(data):
        groups = per_knob(data, k).values()
        between = sum(len(v) * (np.mean(v) - g.mean()) ** 2 for v in groups)
        out.append((k, float(between / total) if total else 0.0, len(groups)))
    return sorted(out, key=lambda t: -t[1])


def heatmap(data, kx: str, ky: str) -> tuple[list[str], list[str], np.ndarray]:
    """Best GFLOPS for each (kx value, ky value) pair; NaN where no record has the pair."""
    xs, ys = list(per_knob(data, kx)), list(per_knob(data, ky))
    m = np.full((len(ys), len(xs)), np.nan)
    for cfg, g in data:
        i, j = ys.index(_value(cfg.get(ky))), xs.index(_value(cfg.get(kx)))
        m[i, j] = g if np.isnan(m[i, j]) else max(m[i, j], g)
    return xs, ys, m


def curves(recs: list[dict], workload) -> dict[str, list[float]]:
    """Best-so-far GFLOPS per tuner run, by trial. A run is one tuner's records in time order until
    the trial number starts again (a resumed run continues its numbers); a tuner's second run is
    ``tuner#2``; a failed trial keeps the best so far."""
    by_tuner = defaultdict(list)
    for r in recs:
        if r.get("tuner") not in R.SKIP_TUNERS and not r.get("retime"):  # a re-time is not a trial
            by_tuner[r.get("tuner", "?")].append(r)
    out = {}
    for tuner, rs in sorted(by_tuner.items()):
        rs.sort(key=lambda r: (r.get("timestamp", 0), r.get("trial", 0)))
        runs, last = [], None
        for r in rs:
            if last is None or r.get("trial", 0) <= last:
                runs.append([])
            runs[-1].append(r)
            last = r.get("trial", 0)
        for i, run in enumerate(runs):
            best, curve = 0.0, []
            for r in run:
                best = max(best, R.gflops(r, workload) if r["status"] == "ok" else 0.0)
                curve.append(best)
            out[tuner if i == 0 else f"{tuner}#{i + 1}"] = curve
    return out


def default_pair(data, ranked=None) -> tuple[str, str]:
    """The heatmap's knobs: tile_ow vs ob when both vary, else the two that matter most."""
    names = knobs(data)
    if {"tile_ow", "ob"} <= set(names):
        return "tile_ow", "ob"
    ranked = ranked or importance(data)
    top = [k for k, _, _ in ranked][:2]
    if len(top) < 2:
        raise ValueError("fewer than two knobs vary in the records")
    return top[0], top[1]


# -- drawing ----------------------------------------------------------------
def _save(plt, fig, path: Path) -> Path:
    """Save at a small size: 80 dpi, then a 128-colour palette (a third of the bytes; the plots are
    for docs and pages)."""
    from PIL import Image  # lazy: comes with matplotlib

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(128)
    small.save(path, optimize=True)
    return path


def _plt():
    import matplotlib  # lazy: plotting is optional and slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and stays out of start-up

    return plt


def plot_knobs(data, title: str, path: Path, names: list[str] | None = None, cols: int = 4) -> Path:
    """One panel per knob: GFLOPS of every record per value (dots), best per value (line)."""
    plt = _plt()
    names = names or [k for k, _, _ in importance(data)]
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax, k in zip(axes.flat, names):
        groups = per_knob(data, k)
        for i, vals in enumerate(groups.values()):
            jitter = (np.arange(len(vals)) % 7 - 3) * 0.04
            ax.scatter(i + jitter, vals, s=5, alpha=0.35, color="tab:blue")
        ax.plot(range(len(groups)), [max(v) for v in groups.values()], "o-", color="tab:red", ms=3, lw=1)
        ax.set_xticks(range(len(groups)), list(groups), fontsize=7, rotation=30)
        ax.set_title(k, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{title}: GFLOPS per knob value (dots: records, red: best)", fontsize=10)
    fig.supylabel("GFLOPS", fontsize=8)
    return _save(plt, fig, path)


def plot_heatmap(data, kx: str, ky: str, title: str, path: Path) -> Path:
    plt = _plt()
    xs, ys, m = heatmap(data, kx, ky)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 + 0.55 * len(xs)), max(3.0, 1.2 + 0.45 * len(ys))))
    im = ax.imshow(m, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs, fontsize=8)
    ax.set_yticks(range(len(ys)), ys, fontsize=8)
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=8, color="w")
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    ax.set_title(f"{title}: best GFLOPS per pair", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(plt, fig, path)


def plot_curves(cs: dict[str, list[float]], title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, c in cs.items():
        ax.plot(range(1, len(c) + 1), c, label=name, lw=1.2)
    ax.set_xlabel("trial")
    ax.set_ylabel("best GFLOPS so far")
    ax.set_title(f"{title}: tuning curves", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def plot_importance(ranked, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 0.5 + 0.28 * len(ranked)))
    names = [k for k, _, _ in ranked][::-1]
    ax.barh(names, [e for _, e, _ in ranked][::-1], color="tab:green")
    ax.set_xlabel("eta-squared (share of GFLOPS variance)", fontsize=8)
    ax.set_title(f"{title}: which knobs matter", fontsize=9)
    ax.tick_params(labelsize=8)
    return _save(plt, fig, path)
