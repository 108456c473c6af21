"""``tvmq tune``: auto-tune variants of each layer for a target, then print the comparison."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TvmqError
from ..explore.explorer import footer as explore_footer
from ..export.model import ModelOptions
from ..export.tuning import tune_model
from ..machine import default_log, for_runner
from ..report import text_table
from ..report.results import add_speedups, rows_from_results
from ..search.session import TuneOptions, tune_tasks
from ..variants import QUANTIZATIONS
from ..targets import get_target
from ..task import Task
from ..workload import resolve
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
    p.add_argument("--tuner", default="xgb", help="xgb, random, grid or metaschedule (TVM's own; it refuses "
                                                  "--early-stopping, --transfer and --measure model)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="candidates proposed and built per round (default 8; metaschedule: 64, num_trials_per_iter)")
    p.add_argument("--early-stopping", type=int, default=None, help="stop after this many trials without gain")
    p.add_argument("--log", help="records file (default autotune_logs/MACHINE-KIND/TARGET.jsonl)")
    p.add_argument("--logs", default="autotune_logs",
                   help="the records database read for warm start and --transfer (default autotune_logs)")
    p.add_argument("--resume", action="store_true", help="continue from the records already in --log")
    p.add_argument("--no-warm-start", action="store_true", help="do not train the cost model on other workloads' logs")
    p.add_argument("--transfer", action="store_true",
                   help="start from other machines' records: measure their best configs of this (and similar) "
                        "workloads first, and train the cost model on all machines' records")
    p.add_argument("--measure", default="run", choices=("run", "model"),
                   help="run: time every candidate for real; model: rank them by the core's performance model "
                        "(llvm-mca, no board needed), then run and verify the best --verify-top for real")
    p.add_argument("--verify-top", type=int, default=4, help="with --measure model: configs verified for real")
    p.add_argument("--retime", type=int, default=None, metavar="K",
                   help="at the end of each layer's run, measure its K fastest configs twice more and keep the one "
                        "with the fastest median, not the luckiest sample (default 4; 0: off; not with --model)")
    g = p.add_argument_group("a whole model (instead of --workload): --trials is the model's budget")
    g.add_argument("--model", help="an ONNX CNN: tune the distinct kernels `export --model` would build")
    g.add_argument("--quantize", default="none", choices=list(QUANTIZATIONS), help="as for export (default none)")
    g.add_argument("--bits", type=int, default=None, help="codebook index bits, as for export")
    g.add_argument("--time-budget", type=float, default=None, metavar="S", help="stop the model's tuning after S s")
    g.add_argument("--random-weights", type=int, default=None, metavar="SEED", help="as for export")
    p.add_argument("--json", help="write the results as a JSON list")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_measure_args(p)
    add_rpc_args(p)


def run(a):
    if a.model:
        return _run_model(a)
    target = get_target(a.target)
    layers = resolve(a.workload or ("alexnet.conv3" if not a.workload_file else None), a.workload_file)
    tasks = [Task.make(wl, v.strip(), target) for wl in layers for v in a.variants.split(",") if v.strip()]
    opts = TuneOptions(trials=a.trials, tuner=a.tuner, batch_size=a.batch_size, early_stopping=a.early_stopping,
                       resume=a.resume, warm_start=not a.no_warm_start, transfer=a.transfer, seed=a.seed,
                       progress=not a.quiet, measure=a.measure, verify_top=a.verify_top, retime=a.retime)
    settings = measure_settings(a)
    runner = make_runner(target, rpc_settings(a, target))
    try:
        machine = for_runner(target, runner)
        log_path = Path(a.log) if a.log else default_log(machine, target)
        results = tune_tasks(tasks, opts, settings, runner, machine, log_path, a.logs)
    finally:
        runner.close()
    rows = rows_from_results(results, a.tuner, runner.label if a.measure == "run" else f"model+{runner.label}")
    add_speedups(rows)
    emu = " (EMULATED: timings are qemu's, not a real board's)" if runner.label == "rpc-emulated" else ""
    if a.measure == "model":
        emu += (f"; candidates ranked by the performance model (MODELLED times in the log), the best {a.verify_top} "
                "run and verified for real: best_ms below is measured")
    print(f"\ntarget {target.name} {json.dumps(target.target, sort_keys=True)}, tuner {a.tuner}, "
          f"{settings.threads} threads, log {log_path}{emu}\nmeasured on {machine.describe()}")
    print(text_table(rows, COLUMNS + (["modelled_ms"] if a.measure == "model" else [])))
    print(explore_footer(a.workload, rows, target.name))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


def _run_model(a):
    if a.retime:
        raise TvmqError("--retime is for per-layer tuning: tune --model shares its budget between kernels batch by "
                        "batch and keeps each one's best measured")
    target = get_target(a.target)
    opts = TuneOptions(trials=a.trials, tuner=a.tuner, batch_size=a.batch_size, resume=a.resume,
                       warm_start=not a.no_warm_start, transfer=a.transfer, seed=a.seed, progress=not a.quiet)
    mopts = ModelOptions(quantize=a.quantize, bits=a.bits, random_weights=a.random_weights)
    # cold weights as in the network; a board's runs stay as they were (not yet checked over RPC)
    settings = measure_settings(a, cold=target.runner == "local")
    runner = make_runner(target, rpc_settings(a, target))
    try:
        machine = for_runner(target, runner)
        log_path = Path(a.log) if a.log else default_log(machine, target)
        summary = tune_model(a.model, mopts, target, opts, settings, runner, machine, log_path, a.logs,
                             a.time_budget, not a.quiet)
    finally:
        runner.close()
    est = summary["estimate_s"]
    print(f"\nmodel {a.model} ({a.quantize}), target {target.name}, {settings.threads} threads, log {log_path}\n"
          f"measured on {machine.describe()}\n{summary['trials']} trials in {summary['seconds']:.0f} s; kernels' "
          f"estimated latency " + (f"{est * 1e3:.2f} ms" if est else "- (a kernel has no verified schedule)"))
    print(text_table(summary["tasks"], ["workload", "variant", "calls", "trials", "best_ms", "gflops"]))
    if summary["untuned"]:
        print(f"untuned (default schedule): {', '.join(summary['untuned'])}")
    print(f"export it with: python -m tvmq export --model {a.model} --quantize {a.quantize} --out DIR")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(summary, indent=2, default=str))
    return 0
