"""Summarise tuner comparisons from the records (docs/TUNING.md's tables).

For each (target, workload, variant, tuner): best GFLOPS after 64 and after 200 trials (from
the records' trial order), trials to reach 90% of the final best, tuning wall time (from the
records' timestamps, see ``elapsed``; MetaSchedule's from the results JSON of its run under
--results), and the XGBoost cost model's quality as the Spearman rank correlation between
predicted and measured speed on held-out configs. --head-to-head puts the tuners side by side
per layer, variant and budget (docs/TUNING.md's first table).

    python scripts/tuning_report.py autotune_logs/amd-znver4-2c/host.jsonl [--results out/tuning] [--md]
    python scripts/tuning_report.py autotune_logs/amd-znver4-2c/compare/host.jsonl --results out/compare --head-to-head --md
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from tvmq.search.driver import curve_to_fraction


def curves(records):
    by = defaultdict(list)
    for r in records:
        if not r.get("retime"):  # measured again at the end of a run: not a trial
            by[(r["target_name"], r["workload"]["name"], r["variant"], r["tuner"])].append(r)
    out = {}
    for key, recs in by.items():
        recs.sort(key=lambda r: (r["trial"], r["timestamp"]))
        flops = None
        best, curve = 0.0, []
        for r in recs:
            from tvmq.workload import ConvWorkload

            flops = flops or ConvWorkload.from_dict(r["workload"]).flops
            if r["status"] == "ok" and r["times"]:
                best = max(best, flops / float(np.median(r["times"])) / 1e9)
            curve.append(best)
        out[key] = (curve, recs)
    return out


def elapsed(recs):
    """Seconds of tuning up to each record of one tuner's run, from the records' timestamps.

    Records of a batch land together, so the gaps between batches are the batch times. The first
    batch (no record marks its start) and a pause between a run and its --resume (a gap over
    2 minutes) each count as one typical batch: the median gap over 1 s.
    """
    ts = sorted(r["timestamp"] for r in recs)
    gaps = np.diff(ts)
    typical = float(np.median(gaps[gaps > 1.0])) if (gaps > 1.0).any() else 0.0
    return list(np.cumsum([typical] + [typical if g > 120.0 else g for g in gaps]))


def head_to_head(records, walls, budgets=(64, 200)):
    """Rows of docs/TUNING.md's head-to-head table: each tuner's best and time at each budget.

    xgb and random: the best after N trials of their run and the time it took to get there (a
    200-trial run continues the 64-trial one). MetaSchedule: its run with budget N (its record's
    trial count), timed as the whole ``tune_tir`` call (the results JSON under --results).
    """
    cur = curves(records)
    pairs = sorted({(k[0], k[1], k[2]) for k in cur})
    rows = []
    for tgt, wl, var in pairs:
        for n in budgets:
            row = dict(layer=wl, variant=var, trials=n)
            for tuner in ("xgb", "random"):
                curve, recs = cur.get((tgt, wl, var, tuner), ([], []))
                if len(curve) >= n:
                    row[tuner] = round(curve[n - 1], 1)
                    row[f"{tuner} s"] = round(elapsed(recs)[n - 1])
                    if tuner == "xgb":
                        row["xgb: trials to 90%"] = curve_to_fraction(curve[:n], 0.9)
            _, ms = cur.get((tgt, wl, var, "metaschedule"), ([], []))
            ms = [r for r in ms if r["trial"] == n]
            if ms:
                r = ms[-1]
                row["MetaSchedule"] = (round(ConvFlops(r) / np.median(r["times"]) / 1e9, 1)
                                       if r["status"] == "ok" and r["times"] else r["status"])
                if (tgt, wl, var, "metaschedule", n) in walls:
                    row["MetaSchedule s"] = round(walls[(tgt, wl, var, "metaschedule", n)])
            for peer, col in (("MetaSchedule", "xgb / MetaSchedule"), ("random", "xgb / random")):
                if isinstance(row.get("xgb"), float) and isinstance(row.get(peer), float) and row[peer] > 0:
                    row[col] = round(row["xgb"] / row[peer], 2)
            if any(k in row for k in ("xgb", "random", "MetaSchedule")):
                rows.append(row)
    return rows


HEAD_COLUMNS = ["layer", "variant", "trials", "xgb", "random", "MetaSchedule", "xgb / MetaSchedule", "xgb / random",
                "xgb s", "random s", "MetaSchedule s", "xgb: trials to 90%"]


def wall_times(results_dir):
    t = defaultdict(float)
    for p in Path(results_dir).glob("*.json"):
        for row in json.loads(p.read_text()):
            t[(row["target"], row["workload"], row["variant"], row["tuner"], row["trials"])] += row.get("tuning_s") or 0.0
    return t


def rank_quality(recs, space_cache={}):
    """Train the xgb tuner's model on the first half of a task's records, Spearman on the rest."""
    from scipy.stats import spearmanr

    from tvmq.search.xgb import XGBTuner
    from tvmq.space import Space
    from tvmq.variants import get as get_variant
    from tvmq.workload import ConvWorkload

    ok = [r for r in recs if r["status"] == "ok" and r["times"]]
    if len(ok) < 24:
        return None
    wl = ConvWorkload.from_dict(ok[0]["workload"])
    space = Space.load(wl, get_variant(ok[0]["variant"]).op)
    ok = [r for r in ok if set(r["config"]) == set(space.names)]
    half = len(ok) // 2
    tuner = XGBTuner(space, seed=0)
    tuner.update([r["config"] for r in ok[:half]], [1.0 / np.median(r["times"]) for r in ok[:half]])
    pred = tuner.predict([r["config"] for r in ok[half:]])
    true = [1.0 / np.median(r["times"]) for r in ok[half:]]
    return float(spearmanr(pred, true).correlation)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--results", default="out/tuning")
    ap.add_argument("--md", action="store_true")
    ap.add_argument("--head-to-head", action="store_true",
                    help="one row per layer, variant and budget (64, 200): the tuners side by side")
    a = ap.parse_args()
    from tvmq.record import log as recordlog
    from tvmq.report import markdown_table, text_table

    records = [r for p in a.logs for r in recordlog.read(p)]
    walls = wall_times(a.results)
    if a.head_to_head:
        print((markdown_table if a.md else text_table)(head_to_head(records, walls), HEAD_COLUMNS))
        return
    rows = []
    for (tgt, wl, var, tuner), (curve, recs) in sorted(curves(records).items()):
        row = dict(target=tgt, workload=wl, variant=var, tuner=tuner, trials=len(curve))
        if tuner == "metaschedule":  # one record per run: its budget is the record's trial count
            for r in recs:
                g = r and r["status"] == "ok" and ConvFlops(r) / np.median(r["times"]) / 1e9
                row[f"best@{r['trial']}"] = g or 0.0
            row["trials"] = max(r["trial"] for r in recs)
        else:
            row["best"] = curve[-1]
            row["best@64"] = curve[min(63, len(curve) - 1)] if len(curve) >= 64 else None
            row["best@200"] = curve[199] if len(curve) >= 200 else None
            row["to90%"] = curve_to_fraction(curve, 0.9)
            if tuner == "xgb":
                row["rank_corr"] = rank_quality(recs)
        if tuner == "metaschedule":  # the run with the largest budget
            row["tuning_s"] = walls.get((tgt, wl, var, tuner, row["trials"]))
        else:  # from the records' timestamps (see elapsed)
            row["tuning_s"] = round(elapsed(recs)[-1], 1)
        row["failed"] = sum(r["status"] != "ok" for r in recs)
        rows.append(row)
    cols = ["target", "workload", "variant", "tuner", "trials", "best", "best@64", "best@200", "to90%", "tuning_s", "failed",
            "rank_corr"]
    print((markdown_table if a.md else text_table)(rows, cols))


def ConvFlops(r):  # noqa: N802 - small helper
    from tvmq.workload import ConvWorkload

    return ConvWorkload.from_dict(r["workload"]).flops


if __name__ == "__main__":
    main()
