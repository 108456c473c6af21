"""How well the transfer-warm-started cost model ranks this machine's configs after the first batch
(docs/TUNING.md, issue 15): the diagnosis behind the 16-trial misses, from records only.

For each layer and variant of the transfer experiment, the xgb model is warm-started as ``tune
--transfer`` does (every other machine's records of the variant), updated with the transfer run's
first batch (the seeds, as measured here), then asked to rank every other config this machine
measured of that task (the transfer run's later trials and the cold run's 200). Printed per pair:
Spearman's rank correlation between predicted and measured speed, the best and median measured
speed of the model's top 8 (as a fraction of the best measured), and how many configs share a
prediction with another (ties: the model cannot tell them apart).

    .venv/bin/python scripts/transfer_model_check.py [--kind KIND] [--src DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfer_report import ORDER, logs  # noqa: E402

from tvmq.machine import record_kind, this_machine  # noqa: E402
from tvmq.record.log import median_time, read  # noqa: E402
from tvmq.search.xgb import XGBTuner  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.task import Task  # noqa: E402
from tvmq.workload import ConvWorkload  # noqa: E402


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", help="machine kind (default: this machine)")
    p.add_argument("--src", nargs="*", help="the other machines' logs (default: every other kind's host.jsonl)")
    p.add_argument("--batch", type=int, default=8, help="the first batch's size (default 8)")
    a = p.parse_args(argv)
    machine = this_machine()
    kind = a.kind or machine.kind
    srcs = a.src or [str(f) for f in sorted(Path("autotune_logs").glob("*/host.jsonl")) if f.parent.name != kind]
    src = [r for f in srcs for r in read(Path(f), warn=False) if record_kind(r) != kind]
    both = logs(kind)
    target = get_target("host")
    print(f"machine {kind}; warm start from {len(src)} records of {', '.join(srcs)}")
    print("| layer | variant | configs | rank corr. | best of top 8 | median of top 8 | ties |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for (name, variant), tran in sorted(both["transfer"].items(), key=lambda kv: (ORDER.index(kv[0][0])
                                                                                    if kv[0][0] in ORDER else 99, kv[0][1])):
        wl = ConvWorkload.from_dict(tran[0]["workload"])
        task = Task.make(wl, variant, target)
        tuner = XGBTuner(task.space(), threads=2, machine=machine)
        tuner.warm_start([r for r in src if r.get("variant") == variant])
        first = tran[: a.batch]
        tuner.update([r["config"] for r in first],
                     [wl.flops / median_time(r) if r["status"] == "ok" else 0.0 for r in first])
        ev = [r for r in tran[a.batch:] + both["cold"].get((name, variant), []) if r["status"] == "ok"]
        if len(ev) < 8:
            continue
        speed = np.array([wl.flops / median_time(r) for r in ev])
        pred = tuner.predict([r["config"] for r in ev])
        top = np.argsort(-pred)[:8]
        ties = len(pred) - len(np.unique(np.round(pred, 6)))
        rows.append((spearman(pred, speed), speed[top].max() / speed.max()))
        print(f"| {name} | {variant} | {len(ev)} | {rows[-1][0]:.2f} | {rows[-1][1]:.2f} | "
              f"{np.median(speed[top]) / speed.max():.2f} | {ties} |")
    if rows:
        print(f"\nmean rank correlation {np.mean([r[0] for r in rows]):.2f}, "
              f"mean best of top 8 {np.mean([r[1] for r in rows]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
