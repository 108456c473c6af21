"""Offline check of the xgb cost model on a new machine, no measurement (docs/TUNING.md, Zen 3 v8).

For each layer and variant with a cold run on this machine: warm-start the model as a transfer run does
(the source machines' records), add the transfer run's first ``--seeds`` measurements, and rank the
configs the cold run measured. Prints the Spearman correlation of the model's scores with their measured
rates, and the best measured rate among the model's top 8 over the cold run's best (mean of 3 model seeds).

    .venv/bin/python scripts/model_rank_check.py --src out/xfer_src \
        --transfer-log autotune_logs/amd-znver3-2c/transfer-v8/host.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvmq.machine import this_machine  # noqa: E402
from tvmq.record.log import read, read_dir  # noqa: E402
from tvmq.search.xgb import XGBTuner  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.task import Task  # noqa: E402
from tvmq.workload import resolve  # noqa: E402

PAIRS = "alexnet.conv2:float,alexnet.conv2:int8,alexnet.conv3:codebook,alexnet.conv4:int8,alexnet.conv5:float,large.bench7:codebook"


def main(argv=None):
    from scipy.stats import spearmanr

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", required=True, help="folder of the source machines' logs (the transfer run's --logs)")
    p.add_argument("--transfer-log", required=True, help="the transfer runs (their first --seeds trials are used)")
    p.add_argument("--cold-log", help="the cold runs (default autotune_logs/KIND/host.jsonl)")
    p.add_argument("--pairs", default=PAIRS, help="comma-separated workload:variant")
    p.add_argument("--seeds", type=int, default=8)
    a = p.parse_args(argv)
    m = this_machine()
    src = read_dir(Path(a.src), warn=False)
    cold = read(a.cold_log or f"autotune_logs/{m.kind}/host.jsonl", warn=False)
    xfer = read(a.transfer_log, warn=False)
    for pair in a.pairs.split(","):
        wl, var = pair.split(":")
        task = Task.make(resolve(wl)[0], var, get_target("host"))
        key, flops = task.measure_key(m.kind, 2), task.workload.flops

        def mine(recs):
            return [r for r in recs if r["workload_key"] == task.workload.key and r["variant"] == var
                    and not r.get("retime")]

        c = [r for r in mine(cold) if r["status"] == "ok"]
        x = mine(xfer)[: a.seeds]
        if not c or not x:
            print(f"{pair}: no cold run or transfer run here")
            continue
        rate = np.array([flops / np.median(r["times"]) for r in c])
        rho, top8 = [], []
        for seed in range(3):
            t = XGBTuner(task.space(), seed=seed, threads=2, machine=m)
            t.warm_start([r for r in src if r.get("variant") == var and r.get("task_key") != key])
            t.update([r["config"] for r in x], [flops / np.median(r["times"]) if r["status"] == "ok" else 0.0 for r in x])
            pred = t.predict([r["config"] for r in c])
            rho.append(spearmanr(pred, rate).correlation)
            top8.append(rate[np.argsort(-pred)[:8]].max() / rate.max())
        print(f"{pair}: spearman {np.mean(rho):.2f}, best of the model's top 8 / cold best {np.mean(top8):.2f} "
              f"({len(c)} configs)")


if __name__ == "__main__":
    main()
