"""``bench`` on a suite of layers: records -> kernels -> measurements (peak, kernels, peers) -> report."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..explore.explorer import footer as explore_footer
from ..machine import for_runner, this_machine
from ..record.log import tvm_version
from ..run.factory import make_runner
from ..run.settings import RPCSettings
from ..report.bench_report import COLUMNS, json_rows, tuning_curves, write_outputs
from ..search.session import TuneOptions, tune_tasks
from ..task import Task
from .jobs import _build_job, _measure_job, _measure_peers, _say, _settings, pick_record
from .ratios import _peak_line, add_ratios
from ..record import log as recordlog
from ..report import text_table
from ..peers import perf, torch_conv
from ..build.from_log import best_record
from ..peers import peak as peak_mod


def _tune_first(a, target, layers, variants, peers, threads, log_dir: Path) -> Path:
    """--trials N: tune the suite (resuming) at the largest thread count, and MetaSchedule at the same budget."""
    log = log_dir / f"{target.name}.jsonl"
    tuners = [a.tuner if a.tuner != "auto" else "xgb"]
    if "metaschedule" in peers:
        if target.runner == "local":
            tuners.append("metaschedule")
        else:
            print("tvmq bench: warning: MetaSchedule tunes on local targets only; not tuned for "
                  f"{target.name}", file=sys.stderr)
    tasks = [Task.make(wl, v, target) for wl in layers for v in variants]
    settings = _settings(a, max(threads))
    runner = make_runner(target, RPCSettings.from_flags(a, target))
    try:
        machine = for_runner(target, runner)
        for tuner in tuners:
            _say(a, f"tuning {len(layers)} layer(s) x {len(variants)} variant(s), {a.trials} trials each, "
                    f"tuner {tuner}")
            opts = TuneOptions(trials=a.trials, tuner=tuner, resume=True, seed=a.seed, progress=not a.quiet)
            tune_tasks(tasks, opts, settings, runner, machine, log, logs=None)
    finally:
        runner.close()
    return log


def run_suite(a, target, layers, suite_label, variants, peers, threads) -> int:
    """The whole bench for parsed arguments ``a`` (commands/bench.py); writes the report under ``a.out``."""

    out = Path(a.out or f"out/bench-{target.name}-{suite_label}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "libs").mkdir(exist_ok=True)
    notes = []
    if target.runner != "local" and not a.rpc_tracker:
        pass  # make_runner brings up the emulated board and says so
    # logs
    records, log_src = [], None
    if a.from_logs:
        log_src = Path(a.from_logs)
        if not log_src.exists():
            if a.trials:
                log_src.mkdir(parents=True, exist_ok=True)
            else:
                print(f"tvmq bench: warning: log folder {str(log_src)!r} does not exist: every variant uses its "
                      "default schedule", file=sys.stderr)
                notes.append(f"`--from-logs {log_src}` does not exist: every tvmq variant ran its default schedule.")
    if a.trials:
        log_dir = log_src if log_src is not None and log_src.is_dir() else (
            log_src.parent if log_src is not None else out / "logs")
        log_file = _tune_first(a, target, layers, variants, peers, threads, log_dir)
        log_src = log_src or log_file
    if log_src is not None and log_src.exists():
        records = recordlog.read_dir(log_src)
        _say(a, f"{len(records)} record(s) from {log_src}")
    elif log_src is None:
        notes.append("No `--from-logs` given: every tvmq variant ran its default schedule (untuned).")

    if "numpy" in peers and os.environ.get("OPENBLAS_CORETYPE"):
        notes.append(f"numpy peer: `OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}` is set here; it was unset "
                     "in the numpy peer's own process (the override halves OpenBLAS's speed on this machine).")
    if "torch" in peers and not torch_conv.available():
        peers = [x for x in peers if x != "torch"]
        notes.append("torch (oneDNN) peer: torch is not installed here (`pip install torch==2.13.0`, CPU build).")
    runner = make_runner(target, RPCSettings.from_flags(a, target))
    local = runner.label == "local"
    if not local:
        if len(threads) > 1:
            notes.append(f"Thread counts {threads} requested; over RPC the board's runtime picks its own thread "
                         f"count, so only one pass ({threads[-1]}) was measured.")
            threads = threads[-1:]
        dropped = [x for x in peers if x in ("ort", "numpy", "metaschedule", "torch")]
        if dropped:
            notes.append(f"Peers {dropped} run on the host only; they are not measured for the board target "
                         f"{target.name}.")
        peers = []
    if runner.label == "rpc-emulated":
        notes.insert(0, "**EMULATED**: every time below is qemu's emulation of the board on this machine, not a "
                        "real board's; the flow, correctness and generated code are real.")
    machine = for_runner(target, runner)
    ctx = dict(target=target, runner=runner, threads=threads, peers=peers, libs=out / "libs", builds=[])
    t_start = time.time()
    rows = []
    try:


        jobs = []
        for wl in layers:
            for v in variants:
                rec, tl = pick_record(Task.make(wl, v, target), records, a.tuner, machine, a.transfer, notes)
                jobs.append(_build_job(a, ctx, wl, v, rec, tl, "tvmq"))
            if "metaschedule" in peers:
                for v in variants:
                    rec = best_record(Task.make(wl, v, target), records, "metaschedule", machine)
                    if rec is not None:
                        jobs.append(_build_job(a, ctx, wl, v, rec, "metaschedule", "metaschedule"))
        _say(a, f"built {len(jobs)} kernel(s)")
        # Thread count outermost: the runner keeps one worker process per thread count.
        peak, log = None, (None if a.quiet else (lambda m: _say(a, m)))
        # Peers first, before any TVM kernel has run: a TVM thread pool that has just run a kernel keeps
        # spinning and would take a core from them (seen: onnxruntime at half its speed alone).
        if peers:
            rows += [r for t in threads for wl in layers for r in _measure_peers(a, ctx, wl, t)]
        for t in threads:
            p1 = peak_mod.measure(target, runner, _settings(a, t), [t], seed=a.seed, log=log)
            peak = p1 if peak is None else peak_mod.merge(peak, p1, passes=False)
            for wl in layers:
                rows += [_measure_job(a, ctx, j, t) for j in jobs if j["wl"] is wl]
            if target.runner == "local":  # again after the layers: on a shared machine one pass may be disturbed
                _say(a, f"measuring the peak again ({t} thread(s))")
                peak = peak_mod.merge(peak, peak_mod.measure(target, runner, _settings(a, t), [t], seed=a.seed,
                                                             log=log), passes=False)
                peak["passes"] = 2
        rows.sort(key=lambda r: (r["threads"], [w.name for w in layers].index(r["workload"]),
                                 {"tvmq": 0, "metaschedule": 1}.get(r["impl"], 2)))
        if "metaschedule" in peers and not any(r["impl"] == "metaschedule" for r in rows):
            notes.append("MetaSchedule: no `tuner=metaschedule` records for these layers in the logs "
                         "(make them with `tvmq tune --tuner metaschedule`, or bench `--trials N`).")
        add_ratios(rows, peak)
        perf = _perf(a, ctx) if a.perf else None
    finally:
        runner.close()
    check = _peer_alone_check(a, ctx, rows, layers, threads) if "ort" in peers else None
    if check:
        notes.append(check["note"])
    meta = dict(target=target.name, target_json=target.target, suite=a.suite, variants=variants, peers=peers,
                threads=threads, runner=runner.label, logs=str(log_src) if log_src else None, records=len(records),
                settings={k: getattr(a, k) for k in ("number", "repeat", "min_repeat_ms", "timeout", "flush_cache",
                                                       "seed")},
                machine=_machine(), date=datetime.datetime.now().isoformat(timespec="seconds"),
                bench_s=round(time.time() - t_start, 1), notes=notes, peer_alone_check=check)
    curves = tuning_curves(records, target, layers)
    write_outputs(out, rows, peak, meta, layers, ctx["builds"], curves, perf, plots=not a.no_plots)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(json_rows(rows), indent=2))
    emu = " (EMULATED: timings are qemu's, not a real board's)" if runner.label == "rpc-emulated" else ""
    print(f"\ntarget {target.name} {json.dumps(target.target, sort_keys=True)}, threads {threads}, "
          f"logs {log_src or '-'}{emu}")
    print(_peak_line(peak))
    print(text_table(rows, COLUMNS))
    print(explore_footer(a.suite, rows, target.name))
    print(f"\nreport: {out / 'report.md'}")
    bad = [r for r in rows if not r["verified"]]
    if bad:
        print(f"tvmq bench: warning: {len(bad)} measurement(s) failed or did not verify (see status/error)",
              file=sys.stderr)
    return 0


def _peer_alone_check(a, ctx, rows, layers, threads) -> dict | None:
    """onnxruntime's Conv on the last layer timed again once every TVM worker is gone: the bench's figure
    should agree with it (within 15%), else the peers were disturbed."""
    wl, t = layers[-1], max(threads)
    bench_row = next((r for r in rows if r["variant"] == "ort.conv" and r["workload"] == wl.name and
                      r["threads"] == t and r.get("best_ms")), None)
    alone = next((r for r in _measure_peers(a, dict(ctx, peers=["ort"]), wl, t) if r["variant"] == "ort.conv"), None)
    if not bench_row or not alone or not alone.get("best_ms"):
        return None
    ratio = alone["best_ms"] / bench_row["best_ms"]
    verdict = "agrees" if abs(ratio - 1) <= 0.15 else "DISAGREES (the peers were disturbed: rerun on a quiet machine)"
    return dict(workload=wl.name, threads=t, bench_gflops=bench_row["gflops"], alone_gflops=alone["gflops"],
                ratio=ratio, note=f"onnxruntime fp32 Conv on {wl.name} at {t} thread(s): {bench_row['gflops']:.1f} "
                                  f"GFLOPS in the bench, {alone['gflops']:.1f} timed again alone after it "
                                  f"({ratio:.2f}x): {verdict}.")


def _machine() -> dict:
    """Who ran the bench: the machine as records name it, plus the software around it."""
    m = this_machine()
    return {"kind": m.kind, "cpu": m.model, "cpus": m.cores, "llvm_cpu": m.llvm_cpu, "features": list(m.features),
            "platform": platform.platform(), "python": platform.python_version(), "tvm": tvm_version(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def _perf(a, ctx):

    ok, why = perf.available()
    if not ok:
        _say(a, f"--perf: not available: {why}")
        return {"available": False, "why": why}
    if ctx["runner"].label != "local":
        return {"available": False, "why": "counters are only read for local targets"}
    t = max(ctx["threads"])
    out = {"available": True, "threads": t, "rows": []}

    with tempfile.TemporaryDirectory(prefix="tvmq-perf-") as d:
        for b in ctx["builds"]:
            ins = b["verifier"].inputs(b["cfg"])
            path = os.path.join(d, "in.npz")
            np.savez(path, **{f"a{i}": x for i, x in enumerate(ins)})
            shape, dtype = b["verifier"].output_spec(b["cfg"])
            c = perf.kernel_counters(b["lib"], path, shape, dtype, t)
            out["rows"].append(dict(workload=b["workload"], variant=b["variant"], **c))
            _say(a, f"perf {b['workload']} {b['variant']}: {c.get('error') or 'ok'}")
    return out
