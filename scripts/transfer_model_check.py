"""How well the transfer-warm-started cost model ranks this machine's configs after the first batch
(docs/TUNING.md, issue 15): the diagnosis behind the 16-trial misses, from records only.

For each layer and variant of the transfer experiment, the xgb model is warm-started as ``tune
--transfer`` was (``--warm others``: every other machine's records of the variant, plus this
machine's transfer records of the layers tuned before it), updated with the transfer run's first
batch (the seeds, as measured here), then asked to rank every other distinct config this machine
measured of that task (the transfer run's later trials and the cold run's 200). Printed per pair:
Spearman's rank correlation (average ranks for ties) between predicted and measured speed, the best
and median measured speed of the model's top 8 (fractions of the best measured), and how many
configs share their prediction with another (the model cannot tell them apart). ``--seeds``
repeats it over the model's seeds and prints the spread of the mean correlation.

    .venv/bin/python scripts/transfer_model_check.py [--kind KIND] [--src FILE ...]
        [--warm others|layer|none|own] [--own-weight F] [--seeds N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfer_report import ORDER, logs  # noqa: E402

from tvmq.machine import record_kind, record_machine, this_machine  # noqa: E402
from tvmq.record.log import median_time, read  # noqa: E402
from tvmq.search import xgb as X  # noqa: E402
from tvmq.space import config_key  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.task import Task  # noqa: E402
from tvmq.workload import ConvWorkload  # noqa: E402


def spearman(a, b) -> float:
    from scipy.stats import spearmanr  # average ranks for ties

    return float(spearmanr(a, b).correlation) if len(a) > 2 else float("nan")


def warm_records(mode: str, variant: str, key: str, name: str, src: list, both: dict) -> list:
    """The records the model is warm-started from (see --warm)."""
    if mode == "none":
        return []
    if mode == "own":  # this machine's cold runs of the other layers: the best a warm start could be
        return [r for (n, v), rs in both["cold"].items() if v == variant and n != name for r in rs]
    recs = [r for r in src if r.get("variant") == variant and (mode == "others" or r.get("workload_key") == key)]
    if mode == "others":  # the real run's own log: this machine's transfer runs of the layers before it
        before = ORDER[: ORDER.index(name)] if name in ORDER else []
        recs += [r for (n, v), rs in both["transfer"].items() if v == variant and n in before for r in rs]
    return recs


def check(both, src, machine, mode, own_weight, seed, batch, out=None) -> list:
    rows = []
    target = get_target("host")
    X.XGBTuner.own_weight = own_weight
    for (name, variant), tran in sorted(both["transfer"].items(),
                                        key=lambda kv: (ORDER.index(kv[0][0]) if kv[0][0] in ORDER else 99, kv[0][1])):
        wl = ConvWorkload.from_dict(tran[0]["workload"])
        task = Task.make(wl, variant, target)
        tuner = X.XGBTuner(task.space(), seed=seed, threads=2, machine=machine)
        tuner.warm_start(warm_records(mode, variant, wl.key, name, src, both))
        first = tran[:batch]
        tuner.update([r["config"] for r in first],
                     [wl.flops / median_time(r) if r["status"] == "ok" else 0.0 for r in first])
        seen = {config_key(r["config"]) for r in first}
        ev = []
        for r in tran[batch:] + both["cold"].get((name, variant), []):
            k = config_key(r["config"])
            if r["status"] == "ok" and k not in seen:
                seen.add(k)
                ev.append(r)
        if len(ev) < 8:
            continue
        speed = np.array([wl.flops / median_time(r) for r in ev])
        pred = tuner.predict([r["config"] for r in ev])
        top = np.argsort(-pred)[:8]
        ties = len(pred) - len(np.unique(np.round(pred, 6)))
        rows.append((spearman(pred, speed), speed[top].max() / speed.max()))
        if out:
            out(f"| {name} | {variant} | {len(ev)} | {rows[-1][0]:.2f} | {rows[-1][1]:.2f} | "
                f"{np.median(speed[top]) / speed.max():.2f} | {ties} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", help="machine kind (default: this machine)")
    p.add_argument("--src", nargs="*", help="the other machines' logs (default: every other kind's host.jsonl)")
    p.add_argument("--warm", choices=("others", "layer", "none", "own"), default="others",
                   help="warm start: other machines' records (+ this machine's earlier transfer runs, as tune "
                        "--transfer), their records of this layer only, none, or this machine's cold runs of "
                        "the other layers")
    p.add_argument("--own-weight", type=float, default=1.0,
                   help="this task's records weigh F times all warm-start records together (tvmq: 1)")
    p.add_argument("--seeds", type=int, default=1, help="repeat over N model seeds (default 1)")
    p.add_argument("--batch", type=int, default=8, help="the first batch's size (default 8)")
    a = p.parse_args(argv)
    kind = a.kind or this_machine().kind
    srcs = a.src or [str(f) for f in sorted(Path("autotune_logs").glob("*/host.jsonl")) if f.parent.name != kind]
    src = [r for f in srcs for r in read(Path(f), warn=False) if record_kind(r) != kind]
    both = logs(kind)
    any_rec = next(iter(both["transfer"].values()), [None])[0]
    if any_rec is None:
        print(f"transfer_model_check: no transfer records under autotune_logs/{kind}/", file=sys.stderr)
        return 2
    machine = record_machine(any_rec)
    print(f"machine {kind}; warm start {a.warm!r} (other machines' logs: {', '.join(srcs)}), own weight "
          f"{a.own_weight:g}")
    means = []
    for seed in range(a.seeds):
        out = print if seed == 0 else None
        if out:
            print("| layer | variant | configs | rank corr. | best of top 8 | median of top 8 | ties |")
            print("|---|---|---|---|---|---|---|")
        rows = check(both, src, machine, a.warm, a.own_weight, seed, a.batch, out)
        means.append((np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])))
    m = np.array(means)
    print(f"\nmean rank correlation {m[:, 0].mean():.2f} (seeds: {m[:, 0].min():.2f}-{m[:, 0].max():.2f}), "
          f"mean best of top 8 {m[:, 1].mean():.2f}, over {a.seeds} seed(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
