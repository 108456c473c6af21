"""Summarise tuner comparisons from the records (docs/TUNING.md's tables).

For each (target, workload, variant, tuner): best GFLOPS after 64 and after 200 trials (from
the records' trial order), trials to reach 90% of the final best, tuning wall time (sum of the gaps
between records, a gap over 2 minutes counted as a pause; MetaSchedule's from the results JSON of its run under out/tuning/), and the XGBoost cost model's quality as the
Spearman rank correlation between predicted and measured speed on held-out configs.

    python scripts/tuning_report.py autotune_logs/host.jsonl [--results out/tuning] [--md]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def curves(records):
    by = defaultdict(list)
    for r in records:
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
    from tvmq.task import OP_NAMES
    from tvmq.workload import ConvWorkload

    ok = [r for r in recs if r["status"] == "ok" and r["times"]]
    if len(ok) < 24:
        return None
    wl = ConvWorkload.from_dict(ok[0]["workload"])
    space = Space.load(wl, OP_NAMES.get(ok[0]["variant"], ok[0]["variant"]))
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
    a = ap.parse_args()
    from tvmq.record import log as recordlog
    from tvmq.report import markdown_table, text_table
    from tvmq.search.driver import curve_to_fraction

    records = [r for p in a.logs for r in recordlog.read(p)]
    walls = wall_times(a.results)
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
        else:  # from the records' timestamps; a gap over 2 minutes is a pause between resumed runs
            ts = sorted(r["timestamp"] for r in recs)
            row["tuning_s"] = round(sum(min(b - a, 120.0) for a, b in zip(ts, ts[1:])), 1)
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
