"""Re-time, in one run, the configs that cold and transfer tuning found (docs/TUNING.md, issue 15).

"Best measured during tuning" favours the run with more trials on a noisy machine: the best of 200
noisy medians is inflated more than the best of 16. This script takes, per layer and variant, the
best config of the cold run (all its trials), of the transfer run's first 16 trials and of all its
64, rebuilds each, checks it against numpy and times them interleaved (``--rounds`` rounds of the
three, in one measurement worker), so the ratios come from one run under the same conditions.

    .venv/bin/python scripts/transfer_recheck.py [--kind KIND] [--rounds 3] [--md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvmq.bench.jobs import build_kernel  # noqa: E402
from tvmq.machine import this_machine  # noqa: E402
from tvmq.record.log import ranked  # noqa: E402
from tvmq.run.base import BuildResult  # noqa: E402
from tvmq.run.local import LocalRunner  # noqa: E402
from tvmq.run.settings import MeasureSettings  # noqa: E402
from tvmq.run.verify import TaskVerifier  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.task import Task  # noqa: E402
from tvmq.workload import ConvWorkload  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_report import ORDER, logs as both_logs  # noqa: E402

SIDES = (("cold 200", "cold", 200), ("transfer 16", "transfer", 16), ("transfer 64", "transfer", 64))


def best_record(recs: list, n: int):
    """The run's pick after ``n`` trials; at its end (``n`` >= its trials) with its re-times, ranked as the tuner
    and apply-best rank them (``record.log.ranked``)."""
    trials = [r for r in recs if not r.get("retime")]
    pool = trials[:n] + ([r for r in recs if r.get("retime")] if n >= len(trials) else [])
    ok = ranked(pool)
    return ok[0] if ok else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", default=None, help="machine kind (default: this machine)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--min-repeat-ms", type=int, default=50)
    p.add_argument("--only", help="comma-separated layer:variant pairs (default: every pair in both logs)")
    p.add_argument("--json", help="write the rows here too")
    p.add_argument("--md", action="store_true")
    p.add_argument("--transfer-log", help="the transfer runs (default autotune_logs/KIND/transfer/host.jsonl)")
    a = p.parse_args(argv)
    kind = a.kind or this_machine().kind
    logs = both_logs(kind, a.transfer_log)
    target = get_target("host")
    runner = LocalRunner()
    settings = MeasureSettings(threads=2, repeat=a.repeat, min_repeat_ms=a.min_repeat_ms, timeout_s=120)
    pairs = sorted(set(logs["cold"]) & set(logs["transfer"]), key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER
                                                                              else 99, k[1]))
    if a.only:
        pairs = [p for p in pairs if f"{p[0]}:{p[1]}" in a.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, variant in pairs:
            wl = ConvWorkload.from_dict(logs["cold"][(name, variant)][0]["workload"])
            task = Task.make(wl, variant, target, **logs["cold"][(name, variant)][0].get("params", {}))
            libs, row = {}, {"layer": name, "variant": variant}
            for label, run, n in SIDES:
                rec = best_record(logs[run][(name, variant)], n)
                row[label + " config"] = rec["config"] if rec else None
                row[label + " tuning"] = wl.flops / float(np.median(rec["times"])) / 1e9 if rec else None
                if rec is None:
                    continue
                key = json.dumps(rec["config"], sort_keys=True)
                if key not in libs:
                    _, cfg, lib, _, _ = build_kernel(task, rec, Path(tmp), f"{name}_{variant}_{len(libs)}", warn=False)
                    libs[key] = (BuildResult(cfg, "ok", lib), [])
                row[label + " key"] = key
            ver = TaskVerifier(task, 0)
            for _ in range(a.rounds):  # interleaved: each round times every distinct config once
                for key, (build, times) in libs.items():
                    (res,) = runner.run([build], ver, settings)
                    times.append(res.median if res.ok else float("inf"))
            for label, _, _ in SIDES:
                if row.get(label + " key"):
                    row[label] = wl.flops / float(np.median(libs[row[label + " key"]][1])) / 1e9
                    row[label + " rounds"] = libs[row[label + " key"]][1]  # seconds, one per round
            if row.get("transfer 64 rounds") and row.get("cold 200 rounds"):
                # the rounds are interleaved: round by round, is the 64-trial pick slower than the cold one?
                row["t64 slower rounds"] = sum(t > c for t, c in zip(row["transfer 64 rounds"], row["cold 200 rounds"]))
            c = row.get("cold 200")
            for label in ("transfer 16", "transfer 64"):
                row[label + " / cold 200"] = row[label] / c if c and row.get(label) else None
            rows.append(row)
            print(f"{name} {variant}: " + ", ".join(f"{lb} {row.get(lb) or 0:.0f}" for lb, _, _ in SIDES),
                  file=sys.stderr, flush=True)
    runner.close()
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2, default=str))
    print(table(rows, kind))
    return 0


def a_rounds(r) -> int:
    return len(r.get("cold 200 rounds") or [])


def table(rows, kind) -> str:
    unit = lambda v: "GOPS" if v == "int8" else "GFLOPS"  # noqa: E731
    L = [f"Re-timed in one run on {kind}, 2 threads, median of the rounds; rates in GFLOPS (GOPS for int8).", "",
         "| layer | variant | cold 200 | transfer 16 | transfer 64 | t16 / c200 | t64 / c200 | t64 slower in rounds "
         "| same config |",
         "|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, d=0: f"{v:.{d}f}" if v else "-"  # noqa: E731
    for r in rows:
        same = "t64" if r.get("transfer 64 key") == r.get("cold 200 key") else ""
        L.append(f"| {r['layer']} | {r['variant']} ({unit(r['variant'])}) | {f(r.get('cold 200'))} "
                 f"| {f(r.get('transfer 16'))} | {f(r.get('transfer 64'))} | {f(r.get('transfer 16 / cold 200'), 2)} "
                 f"| {f(r.get('transfer 64 / cold 200'), 2)} | {r.get('t64 slower rounds', '-')} of {a_rounds(r)} "
                 f"| {same} |")
    n = len(rows)
    t16 = sum(1 for r in rows if (r.get("transfer 16 / cold 200") or 0) >= 0.95)
    t64 = sum(1 for r in rows if (r.get("transfer 64 / cold 200") or 0) >= 1.0)
    t64b = sum(1 for r in rows if (r.get("transfer 64 / cold 200") or 0) >= 0.98)
    worse = sum(1 for r in rows if r.get("t64 slower rounds") is not None and r["t64 slower rounds"] == a_rounds(r))
    L += ["", f"transfer 16 >= 0.95 x cold 200 on {t16}/{n}; transfer 64 >= cold 200 on {t64}/{n} (>= 0.98: {t64b}); "
              f"transfer 64 slower in every round (one-sided sign test p = 0.5^rounds) on {worse}/{n}"]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
