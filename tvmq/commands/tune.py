"""``tvmq tune``: auto-tune variants of each layer for a target, then print the comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import TvmqError
from ..explore.explorer import footer as explore_footer
from ..machine import for_target
from .common import add_measure_args, add_rpc_args, add_workload_args, make_runner, measure_settings, rpc_settings

DEFAULT_VARIANTS = "float,codebook,int8,im2col"
COLUMNS = [
    "workload", "variant", "best_ms", "gflops", "unit", "vs_float", "vs_im2col", "trials", "tuning_s", "verified", "instructions",
]


def add_arguments(p):
    p.add_argument("--target", default="host", help="target name (see `tvmq targets`)")
    add_workload_args(p)
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    p.add_argument("--trials", type=int, default=64, help="measurements per layer and variant")
    p.add_argument("--tuner", default="xgb", help="xgb, random, grid or metaschedule")
    p.add_argument("--batch-size", type=int, default=8, help="candidates proposed and built per round")
    p.add_argument("--early-stopping", type=int, default=None, help="stop after this many trials without gain")
    p.add_argument("--log", help="records file (default autotune_logs/MACHINE-KIND/TARGET.jsonl)")
    p.add_argument("--logs", default="autotune_logs",
                   help="the records database read for warm start and --transfer (default autotune_logs)")
    p.add_argument("--resume", action="store_true", help="continue from the records already in --log")
    p.add_argument("--no-warm-start", action="store_true", help="do not train the cost model on other workloads' logs")
    p.add_argument("--transfer", action="store_true",
                   help="start from other machines' records: measure their best configs of this (and similar) "
                        "workloads first, and train the cost model on all machines' records")
    p.add_argument("--json", help="write the results as a JSON list")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_measure_args(p)
    add_rpc_args(p)


def run(a):
    from ..record import log as recordlog
    from ..report import text_table
    from ..report.results import add_speedups
    from ..search import ALL_TUNERS
    from ..targets import get_target
    from ..task import Task
    from ..workload import resolve

    target = get_target(a.target)
    layers = resolve(a.workload or ("alexnet.conv3" if not a.workload_file else None), a.workload_file)
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    tasks = [Task.make(wl, v, target) for wl in layers for v in variants]
    if a.tuner not in ALL_TUNERS:
        raise TvmqError(f"unknown tuner {a.tuner!r}; valid tuners are {ALL_TUNERS}")
    if a.trials < 1:
        raise TvmqError(f"--trials must be >= 1, got {a.trials}")
    settings = measure_settings(a)
    runner = make_runner(target, rpc_settings(a, target))
    machine = for_target(target, runner.label, getattr(getattr(runner, "rpc", None), "address", None))
    log_path = Path(a.log or f"autotune_logs/{machine.kind}/{target.name}.jsonl")
    prior = recordlog.read(log_path) if log_path.exists() else []
    db = _database(a, log_path, prior)
    rows = []
    try:
        if a.tuner == "metaschedule":
            from ..search.metaschedule import tune_metaschedule

            for task in tasks:
                r = tune_metaschedule(task, a.trials, settings, runner, log_path)
                rows.append(r)
        else:
            from ..build import Builder

            builder = Builder(settings.build_workers, settings.build_timeout_s)
            try:
                for task in tasks:
                    rows.append(_tune_one(a, task, machine, db, prior, builder, runner, settings, log_path))
            finally:
                builder.close()
    finally:
        runner.close()
    add_speedups(rows)
    emu = " (EMULATED: timings are qemu's, not a real board's)" if runner.label == "rpc-emulated" else ""
    print(f"\ntarget {target.name} {json.dumps(target.target, sort_keys=True)}, tuner {a.tuner}, "
          f"{settings.threads} threads, log {log_path}{emu}\nmeasured on {machine.describe()}")
    print(text_table(rows, COLUMNS))
    print(explore_footer(a.workload, rows, target.name))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


def _database(a, log_path: Path, prior: list[dict]) -> list[dict]:
    """Records for warm start and transfer: --logs plus --log (without reading a file twice)."""
    from ..record import log as recordlog

    db = list(prior)
    src = Path(a.logs)
    if src.exists():
        here = log_path.resolve()
        files = [src] if src.is_file() else sorted(src.rglob("*.jsonl"))
        db += [r for f in files if f.resolve() != here for r in recordlog.read(f)]
    return db


def _tune_one(a, task, machine, db, prior, builder, runner, settings, log_path) -> dict:
    """Tune one task (warm start and transfer seeds from ``db``) and return its table row."""
    from ..record.select import transfer_seeds
    from ..report.asm import key_instructions
    from ..report.asm import summary as asm_summary
    from ..report.results import result_row
    from ..search import make_tuner
    from ..search.driver import Measurer, tune

    key = task.measure_key(machine.kind, settings.threads)
    tuner = make_tuner(a.tuner, task.space(), seed=a.seed, threads=settings.threads, machine=machine)
    if not a.no_warm_start:
        same_machine = [r for r in db if r.get("machine_kind") == machine.kind and r.get("target") == task.target.target]
        tuner.warm_start([r for r in (db if a.transfer else same_machine)
                          if r.get("variant") == task.variant and r.get("task_key") != key])
    seeds = []
    if a.transfer and not any(r.get("task_key") == key for r in prior):
        seeds = transfer_seeds(task, db, machine, n=a.batch_size)
        if not a.quiet:
            print(f"tvmq tune: {task.workload.name} {task.variant}: transfer: measuring {len(seeds)} config(s) "
                  "from other machines' records first", file=sys.stderr)
    res = tune(task, tuner, Measurer(task, builder, runner, settings), a.trials, log_path, a.batch_size, a.resume,
               a.early_stopping, settings, runner.label, not a.quiet, prior, machine, seeds)
    row = result_row(task, res.best_time, res.trials, res.tuning_s, res.best_config is not None, res.best_err,
                     a.tuner, runner.label, res.best_config)
    if res.best_config is not None:
        row["asm_counts"] = key_instructions(task, res.best_config)
        row["instructions"] = asm_summary(row["asm_counts"])
    else:
        print(f"tvmq: warning: no candidate of {task.workload.name} {task.variant} verified ({res.statuses})",
              file=sys.stderr)
    return row
