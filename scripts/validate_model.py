"""Validate the performance model where measurement is real (docs/EDGE.md, "Is the model any good?").

For each layer and variant of a log measured on this machine, rebuild up to --configs of its
verified configs (the measured best among them), estimate each with the host's scheduling model
(the same method as the Cortex-A53 model: llvm-mca on the hottest innermost loop, the work it does,
the thread balance, a memory floor), and compare with the measured medians:

* Spearman rank correlation between modelled and measured time;
* the measured time of the model's top pick against the measured best (1.00 = it picked the best).

    python scripts/validate_model.py autotune_logs/intel-rocketlake-2c/host.jsonl --mcpu sapphirerapids --md
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr

from tvmq.build import Builder
from tvmq.record.log import median_time, read
from tvmq.run import mca
from tvmq.run.mca import ModelRunner
from tvmq.run.settings import MeasureSettings
from tvmq.targets import TargetInfo
from tvmq.task import Task
from tvmq.workload import ConvWorkload


def sample(recs: list, n: int) -> list:
    """``n`` verified records spread over the measured range, the best always among them."""
    ok = sorted((r for r in recs if r["status"] == "ok"), key=median_time)
    uniq = list({str(sorted(r["config"].items())): r for r in ok}.values())
    uniq.sort(key=median_time)
    if len(uniq) <= n:
        return uniq
    idx = np.unique(np.linspace(0, len(uniq) - 1, n).round().astype(int))
    return [uniq[i] for i in idx]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("log")
    p.add_argument("--mcpu", default="sapphirerapids", help=f"the scheduling model: one of {sorted(mca.MODELS)}")
    p.add_argument("--configs", type=int, default=24)
    p.add_argument("--layers", default="conv2,conv3,conv4,conv5")
    p.add_argument("--variants", default="float,int8,codebook")
    p.add_argument("--md", action="store_true")
    a = p.parse_args(argv)
    model = mca.MODELS[a.mcpu]
    groups = defaultdict(list)
    for r in read(a.log, warn=False):
        if r["workload"]["name"] in a.layers.split(",") and r["variant"] in a.variants.split(",") \
                and not r.get("modelled") and r.get("tuner") in ("xgb", "random"):
            groups[(r["workload"]["name"], r["variant"])].append(r)
    rows = []
    builder = Builder(2, 180, asm=True)
    try:
        for (layer, variant), recs in sorted(groups.items()):
            picked = sample(recs, a.configs)
            r0 = picked[0]
            ti = TargetInfo(name=r0["target_name"], target=r0["target"], arch="x86_64")
            task = Task.make(ConvWorkload.from_dict(r0["workload"]), variant, ti)
            builds = builder.build(task, [task.space().complete(r["config"]) for r in picked])
            runner = ModelRunner(model, task)
            est = runner.run(builds, None, MeasureSettings(threads=r0.get("threads") or 2))
            pairs = [(e.median, median_time(r)) for e, r in zip(est, picked) if e.ok]
            if len(pairs) < 3:
                print(f"{layer} {variant}: only {len(pairs)} configs modelled "
                      f"({[e.error for e in est if not e.ok][:1]})", file=sys.stderr)
                continue
            m, t = map(np.array, zip(*pairs))
            rho = spearmanr(m, t).correlation
            pick = t[int(np.argmin(m))]
            rows.append(dict(layer=layer, variant=variant, configs=len(pairs), spearman=rho,
                             pick_vs_best=t.min() / pick, best_ms=t.min() * 1e3, pick_ms=pick * 1e3))
            print(f"{layer} {variant}: rho {rho:.2f}, pick {t.min() / pick:.2f} of the best", file=sys.stderr)
    finally:
        builder.close()
    head = ["layer", "variant", "configs", "spearman", "pick_vs_best", "best_ms", "pick_ms"]
    if a.md:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        vals = [f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in head]
        print(("| " + " | ".join(vals) + " |") if a.md else "  ".join(vals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
