"""The transfer table (docs/TUNING.md): transfer tuning at 16 and 64 trials against 200 cold trials.

Reads this machine's cold log and transfer log (scripts/transfer_experiment.sh) and prints, per
layer and variant, the best GFLOPS (GOPS for int8) after N trials of each run, the ratios and the
tuning time. The 16-trial figure is the first 16 trials of the 64-trial transfer run.

    python scripts/transfer_report.py [--kind MACHINE-KIND] [--md]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tvmq.machine import this_machine
from tvmq.record.log import read
from tvmq.workload import ConvWorkload, resolve

ORDER = ["conv2", "conv3", "conv4", "conv5", "bench7", "bench1"]
LAYERS = ["alexnet.conv2", "alexnet.conv3", "alexnet.conv4", "alexnet.conv5", "large.bench7", "large.bench1"]


def runs(*paths: Path) -> dict:
    """(workload, variant) -> one run's records in trial order (xgb, ``host`` target, 2 threads).

    A pair tuned more than once (other task keys: another kernel revision, a later re-tune) keeps
    its longest run, the 200-trial one in the cold logs; the newest among equally long ones. Only the
    experiment's layers count (by shape: the digits CNN has a conv2 too)."""
    keys = {resolve(w)[0].key for w in LAYERS}
    by = defaultdict(list)
    for path in paths:
        if not path.exists():
            continue
        for r in read(path, warn=False):
            if (r.get("tuner") == "xgb" and r.get("target_name") == "host" and r.get("threads", 2) == 2
                    and r.get("workload_key") in keys):
                by[(r["workload"]["name"], r["variant"], r["task_key"], str(path))].append(r)  # one run: one log
    out = {}
    trials = lambda rs: sum(not r.get("retime") for r in rs)  # noqa: E731
    size_then_age = lambda kv: (trials(kv[1]), max(r["timestamp"] for r in kv[1]))  # noqa: E731
    for (name, variant, _, _), v in sorted(by.items(), key=size_then_age):
        out[(name, variant)] = sorted(v, key=lambda r: (r["trial"], r["timestamp"]))  # the longest comes last
    return out


def logs(kind: str, transfer_log: str | None = None) -> dict:
    """The cold runs (this machine's pre-tuned log, plus cold/ for pairs whose key was tuned since) and
    the transfer runs of ``kind`` (``transfer_log``, default its transfer/host.jsonl)."""
    base = Path(f"autotune_logs/{kind}")
    return {"cold": runs(base / "host.jsonl", base / "cold" / "host.jsonl"),
            "transfer": runs(Path(transfer_log) if transfer_log else base / "transfer" / "host.jsonl")}


def best_after(recs: list, n: int) -> float:
    """Best rate (GFLOPS/GOPS) in the first ``n`` trials (0 if none verified)."""
    flops = ConvWorkload.from_dict(recs[0]["workload"]).flops
    recs = [r for r in recs if not r.get("retime")]  # the best seen while tuning: trials only
    ok = [float(np.median(r["times"])) for r in recs[:n] if r["status"] == "ok" and r["times"]]
    return flops / min(ok) / 1e9 if ok else 0.0


def seconds(recs: list, n: int) -> float:
    """Wall time of the first ``n`` trials from timestamps (plus the first batch's compile+run, estimated)."""
    rs = [r for r in recs if not r.get("retime")][:n]
    if len(rs) < 2:
        return 0.0
    span = rs[-1]["timestamp"] - rs[0]["timestamp"]
    return span * len(rs) / max(len(rs) - 1, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", default=None, help="machine kind (default: this machine)")
    p.add_argument("--md", action="store_true", help="markdown table")
    p.add_argument("--transfer-log", help="the transfer runs (default autotune_logs/KIND/transfer/host.jsonl)")
    a = p.parse_args(argv)
    kind = a.kind or this_machine().kind
    both = logs(kind, a.transfer_log)
    cold, tran = both["cold"], both["transfer"]
    if not cold or not tran:
        print(f"transfer_report: no cold or transfer records under autotune_logs/{kind}/", file=sys.stderr)
        return 2
    head = ["layer", "variant", "cold 16", "cold 64", "cold 200", "transfer 16", "transfer 64", "t16 / c200",
            "t64 / c200", "cold 200 s", "transfer 64 s"]
    rows = []
    keys = sorted(set(cold) & set(tran), key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
    for k in keys:
        c, t = cold[k], tran[k]
        c200, t16, t64 = best_after(c, 200), best_after(t, 16), best_after(t, 64)
        rows.append([k[0], k[1], f"{best_after(c, 16):.1f}", f"{best_after(c, 64):.1f}", f"{c200:.1f}", f"{t16:.1f}",
                     f"{t64:.1f}", f"{t16 / c200:.2f}" if c200 else "-", f"{t64 / c200:.2f}" if c200 else "-",
                     f"{seconds(c, 200):.0f}", f"{seconds(t, 64):.0f}"])
    if a.md:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(x) for h, x in zip(head, w)))
        for r in rows:
            print("  ".join(v.ljust(x) for v, x in zip(r, w)))
    r16 = [float(r[7]) for r in rows if r[7] != "-"]
    r64 = [float(r[8]) for r in rows if r[8] != "-"]
    print(f"\n{len(rows)} layer/variant pairs on {kind}: transfer 16 >= 0.95 x cold 200 on "
          f"{sum(x >= 0.95 for x in r16)}/{len(r16)}; transfer 64 >= cold 200 on {sum(x >= 1.0 for x in r64)}/{len(r64)}"
          f" (>= 0.98: {sum(x >= 0.98 for x in r64)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
