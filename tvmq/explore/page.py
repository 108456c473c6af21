"""The space as a markdown page with PNGs: knobs, a heatmap, tuning curves, knob importance."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TvmqError
from . import space_plots as S


def write(out_dir: str | Path, recs: list[dict], task, machine: str, best=None,
          pair: tuple[str, str] | None = None) -> str:
    """Draw the space of ``recs`` into ``out_dir`` (``explore.md`` and PNGs); returns a short text
    naming the files and the knob ranking."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = S.samples(recs, task.workload, task.space())
    if len(data) < 2:
        raise TvmqError(f"only {len(data)} timed records of {task.workload.name} {task.variant}: nothing to plot")
    title = f"{task.workload.name} {task.variant}"
    stem = f"{task.workload.name}_{task.variant}".replace(".", "_")
    ranked = S.importance(data)
    pngs = {"knobs": S.plot_knobs(data, title, out / f"{stem}_knobs.png", [k for k, _, _ in ranked])}
    if pair and not set(pair) <= set(S.knobs(data)):
        raise TvmqError(f"--heatmap {','.join(pair)}: both knobs must vary in the records; those that do: "
                        f"{S.knobs(data)}")
    try:
        kx, ky = pair or S.default_pair(data, ranked)
        pngs["heatmap"] = S.plot_heatmap(data, kx, ky, title, out / f"{stem}_heatmap.png")
    except ValueError:
        kx = ky = None
    cs = S.curves(recs, task.workload)
    pngs["curves"] = S.plot_curves(cs, title, out / f"{stem}_curves.png")
    pngs["importance"] = S.plot_importance(ranked, title, out / f"{stem}_importance.png")
    md = markdown(title, machine, data, ranked, cs, {k: p.name for k, p in pngs.items()}, (kx, ky), task, best)
    page = out / f"{stem}.md"
    page.write_text(md)
    lines = [f"space: {len(data)} timed records drawn into {page} and {len(pngs)} PNGs in {out}/",
             "knobs that matter (eta-squared): " + ", ".join(f"{k} {e:.2f}" for k, e, _ in ranked[:6])]
    return "\n".join(lines)


def markdown(title, machine, data, ranked, cs, pngs, pair, task, best=None) -> str:
    cmd = (f"python -m tvmq explore --workload <suite>.{task.workload.name} --variant {task.variant} "
           f"--target {task.target.name}")
    g = [x for _, x in data]
    rows = [f"| {k} | {e:.3f} | {n} | {_best_value(data, k)} |" for k, e, n in ranked]
    tuners = [f"| {name} | {len(c)} | {c[-1]:.1f} | {_to90(c)} |" for name, c in cs.items() if c]
    parts = [
        f"# The space of {title} on target {task.target.name}",
        "",
        f"{machine}. {len(data)} timed records; GFLOPS from their median times "
        f"(best {max(g):.1f}, median {sorted(g)[len(g) // 2]:.1f}, worst {min(g):.1f}).",
        "",
        f"The kernel behind the best record: `{cmd}`.",
        "",
        "## Which knobs matter",
        "",
        "eta-squared: the share of the GFLOPS variance explained by the knob's value (one-way split; "
        "the tuner samples knobs together, so correlated knobs share credit).",
        "",
        "| knob | eta-squared | values | best value |",
        "|---|---|---|---|",
        *rows,
        "",
        f"![importance]({pngs['importance']})",
        "",
        "## Performance against each knob",
        "",
        f"![knobs]({pngs['knobs']})",
        "",
    ]
    if "heatmap" in pngs:
        parts += [f"## {pair[0]} x {pair[1]}", "", f"![heatmap]({pngs['heatmap']})", ""]
    parts += ["## Tuning curves", "", "| run | trials | best GFLOPS | trials to 90% |", "|---|---|---|---|",
              *tuners, "", f"![curves]({pngs['curves']})", ""]
    if best is not None:
        parts += ["## Config of the kernel shown", "", "```json", json.dumps(best.config, sort_keys=True), "```", ""]
    return "\n".join(parts)


def _best_value(data, knob: str) -> str:
    groups = S.per_knob(data, knob)
    return max(groups, key=lambda v: max(groups[v]))


def _to90(curve: list[float]) -> int:
    return next(i + 1 for i, v in enumerate(curve) if v >= 0.9 * curve[-1])
