"""``tvmq bench``: every variant of every layer against its baselines, measured in one run, with a report.

For each layer of the suite and each thread count: tvmq's variants rebuilt from the best tuning
records (no tuning unless ``--trials``), MetaSchedule's best from the same logs, onnxruntime's fp32
``Conv`` and u8 x s8 ``QLinearConv``, and im2col + numpy matmul (BLAS); every one verified against
numpy before its time counts, timed as median and spread over ``--repeat`` samples, and compared by
time ratios taken in this run. Also measured here: the machine's fp32 FMA peak and copy bandwidth per
thread count (``tvmq.peers.peak``), so each result is a % of peak and a point on a roofline.

Writes into ``--out`` (default ``out/bench-TARGET-SUITE/``): ``report.md``, ``results.csv``,
``results.json`` (and ``--json OUT``), ``*.png`` plots, ``libs/`` (the built kernels).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..build.lower import compile_mod
from ..errors import TvmqError
from ..explore.explorer import footer as explore_footer
from ..machine import for_target
from ..report.results import INT_VARIANTS
from .common import add_measure_args, add_rpc_args, make_runner, measure_settings, rpc_settings

DEFAULT_VARIANTS = "float,codebook,codebook4,codebook_int8,int8,im2col,im2col_int8,im2col_codebook"
DEFAULT_PEERS = "ort,numpy,metaschedule"
PEERS = ("ort", "numpy", "metaschedule")
TVMQ_TUNERS = ("xgb", "random", "grid")
PEER_VARIANTS = ("ort.conv", "ort.qlinearconv", "numpy.im2col")
FLOAT_BASE = "float"
COLUMNS = ["workload", "variant", "impl", "tuner", "threads", "best_ms", "spread_pct", "gflops", "unit", "pct_peak",
           "vs_float", "vs_im2col", "vs_ort", "vs_ort_q", "vs_metaschedule", "verified"]
CSV_COLUMNS = ["workload", "workload_key", "variant", "impl", "base_variant", "target", "runner", "emulated", "tuner",
               "trial", "threads", "best_ms", "min_ms", "max_ms", "spread_pct", "gflops", "unit", "pct_peak",
               "peak_gflops", "peak_kind", "vs_float", "vs_im2col", "vs_ort", "vs_ort_q", "vs_metaschedule", "verified",
               "max_abs_err", "status", "error", "compile_s", "so_bytes", "arg_bytes", "intensity"]


# -- arguments ------------------------------------------------------------------------------------
class _ThreadsAsList:
    """Passes ``add_measure_args`` through, with ``--threads`` taking a list (1,2) instead of one count."""

    def __init__(self, parser):
        self.parser = parser

    def add_argument_group(self, *args, **kw):
        return _ThreadsAsList(self.parser.add_argument_group(*args, **kw))

    def add_argument(self, *names, **kw):
        if "--threads" in names:
            kw = dict(kw, type=str, default=str(kw.get("default", 2)),
                      help="comma-separated TVM runtime thread counts, e.g. 1,2 (default %(default)s)")
        return self.parser.add_argument(*names, **kw)


def add_arguments(p):
    p.add_argument("--suite", default="alexnet",
                   help="alexnet, large, llc, one layer (alexnet.conv3), or a workload FILE (JSON list of layers)")
    p.add_argument("--target", default="host", help="host, server or edge (see `tvmq targets`)")
    p.add_argument("--from-logs", metavar="DIR",
                   help="tuning records (*.jsonl under DIR, or one file) to rebuild the best schedules from")
    p.add_argument("--transfer", action="store_true",
                   help="where this machine has no record, build from the most similar machine's (with a warning)")
    p.add_argument("--trials", type=int, default=0,
                   help="tune each layer and variant for N trials first (--tuner; MetaSchedule too when it is a "
                        "peer), appending to DIR/TARGET.jsonl (DIR: --from-logs, else OUT/logs)")
    p.add_argument("--tuner", default="auto",
                   help="whose records to use: auto (xgb when present, else the best of any tvmq tuner) or "
                        "xgb/random/grid; with --trials, the tuner to run (auto = xgb)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"comma-separated subset of {','.join(PEERS)}, or none (default {DEFAULT_PEERS})")
    p.add_argument("--out", help="output folder (default out/bench-TARGET-SUITE)")
    p.add_argument("--json", help="also write the per layer and variant results as a JSON list here")
    p.add_argument("--perf", action="store_true", help="add hardware counters from `perf stat` where they work")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_measure_args(_ThreadsAsList(p))
    add_rpc_args(p)


def _csv_list(s: str) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def _layers(suite: str):
    from ..workload import resolve

    if suite.endswith(".json") or os.path.sep in suite or Path(suite).is_file():
        return resolve(file=suite), Path(suite).stem
    return resolve(suite), suite.replace(".", "-")


def _parse(a):
    from ..targets import get_target
    from ..task import VARIANT_DEFAULTS

    target = get_target(a.target)
    layers, suite_label = _layers(a.suite)
    variants = _csv_list(a.variants)
    bad = [v for v in variants if v not in VARIANT_DEFAULTS]
    if bad or not variants:
        raise TvmqError(f"unknown variant(s) {bad}; valid variants are {sorted(VARIANT_DEFAULTS)}")
    peers = [] if a.peers.strip().lower() == "none" else _csv_list(a.peers)
    bad = [x for x in peers if x not in PEERS]
    if bad:
        raise TvmqError(f"unknown peer(s) {bad}; valid peers are {list(PEERS)} or none")
    try:
        threads = sorted({int(t) for t in _csv_list(a.threads)})
    except ValueError:
        raise TvmqError(f"--threads must be comma-separated integers (e.g. 1,2), got {a.threads!r}") from None
    if not threads or threads[0] < 1:
        raise TvmqError(f"--threads must be positive integers, got {a.threads!r}")
    if a.trials < 0:
        raise TvmqError(f"--trials must be >= 0, got {a.trials}")
    if a.tuner not in ("auto", *TVMQ_TUNERS):
        raise TvmqError(f"unknown --tuner {a.tuner!r}; valid: auto, {', '.join(TVMQ_TUNERS)}")
    return target, layers, suite_label, variants, peers, threads


def _settings(a, threads: int):
    """The shared flags' MeasureSettings, at ``threads`` (bench's --threads is a list)."""
    import argparse

    return measure_settings(argparse.Namespace(**dict(vars(a), threads=threads)))


def _say(a, msg):
    if not a.quiet:
        print(f"tvmq bench: {msg}", file=sys.stderr, flush=True)


# -- records ----------------------------------------------------------------------------------------
def pick_record(task, records, tuner: str = "auto", machine=None, transfer: bool = False, notes=None):
    """(record, tuner label) for ``machine``: xgb's best when present (``auto``), else the best of any tvmq
    tuner; other machines' records only with ``transfer``, and then named in ``notes``."""
    from ..build.from_log import choice_for

    if tuner != "auto":
        c = choice_for(task, records, tuner, machine, transfer=transfer)
    else:
        c = choice_for(task, records, "xgb", machine, transfer=transfer)
        if c.record is None:
            c = choice_for(task, [r for r in records if r.get("tuner") in TVMQ_TUNERS], None, machine,
                           transfer=transfer)
    if notes is not None and c.note:
        notes.append(c.note)
        print(f"tvmq bench: {'warning: ' if c.source != 'this machine' else ''}{c.note}", file=sys.stderr)
    if c.record is None:
        return None, ("default" if tuner == "auto" else tuner)
    label = c.record["tuner"] + (f" (from {c.from_kind})" if c.source == "transfer" else "")
    return c.record, label


def _tune_first(a, target, layers, variants, peers, log_dir: Path):
    """--trials N: run `tvmq tune` (resuming) for the suite, and MetaSchedule at the same budget."""
    import argparse

    from . import tune as tune_cmd

    wfile = None
    spec = a.suite
    if a.suite.endswith(".json") or Path(a.suite).is_file():
        wfile, spec = a.suite, None
    log = log_dir / f"{target.name}.jsonl"
    tuners = [a.tuner if a.tuner != "auto" else "xgb"]
    if "metaschedule" in peers:
        if target.runner == "local":
            tuners.append("metaschedule")
        else:
            print("tvmq bench: warning: MetaSchedule tunes on local targets only; not tuned for "
                  f"{target.name}", file=sys.stderr)
    for tuner in tuners:
        p = argparse.ArgumentParser()
        tune_cmd.add_arguments(p)
        argv = ["--target", a.target, "--variants", ",".join(variants), "--trials", str(a.trials), "--tuner", tuner,
                "--log", str(log), "--resume", "--repeat", str(a.repeat), "--number", str(a.number),
                "--min-repeat-ms", str(a.min_repeat_ms), "--timeout", str(a.timeout), "--threads",
                str(max(_csv_int(a.threads))), "--build-workers", str(a.build_workers), "--seed", str(a.seed)]
        if hasattr(a, "build_timeout"):
            argv += ["--build-timeout", str(a.build_timeout)]
        argv += ["--workload-file", wfile] if wfile else ["--workload", spec]
        if a.quiet:
            argv.append("--quiet")
        if a.rpc_tracker:
            argv += ["--rpc-tracker", a.rpc_tracker] + (["--rpc-key", a.rpc_key] if a.rpc_key else [])
        _say(a, f"tuning {len(layers)} layer(s) x {len(variants)} variant(s), {a.trials} trials each, tuner {tuner}")
        tune_cmd.run(p.parse_args(argv))
    return log


def _csv_int(s):
    return [int(x) for x in _csv_list(s)]


# -- measurements -------------------------------------------------------------------------------------
def _stats(times):
    ts = np.asarray(times, dtype=float)
    med = float(np.median(ts))
    return {"best_ms": med * 1e3, "min_ms": float(ts.min()) * 1e3, "max_ms": float(ts.max()) * 1e3,
            "spread_pct": 100.0 * float(ts.max() - ts.min()) / med if med > 0 else None}


def _row(wl, variant, impl, target, runner_label, threads, times, status, error="", max_abs_err=None, tuner=None,
         base_variant=None, **extra):
    ok = status == "ok" and bool(times)
    r = {"workload": wl.name, "workload_key": wl.key, "variant": variant, "impl": impl,
         "base_variant": base_variant or variant, "target": target.name, "target_json": target.target,
         "runner": runner_label, "emulated": runner_label == "rpc-emulated", "tuner": tuner, "threads": threads,
         "best_ms": None, "min_ms": None, "max_ms": None, "spread_pct": None, "gflops": None,
         "unit": "GOPS" if (base_variant or variant) in INT_VARIANTS or variant == "ort.qlinearconv" else "GFLOPS",
         "verified": ok, "max_abs_err": max_abs_err, "status": status, "error": error, "times_s": list(times or [])}
    if ok:
        r.update(_stats(times))
        r["gflops"] = wl.flops / (r["best_ms"] / 1e3) / 1e9
    r.update(extra)
    return r


def _arg_bytes(op) -> int:
    return int(sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in op.args))


def _peer_bytes(wl, variant) -> int:
    if variant == "ort.qlinearconv":
        return wl.bytes(weight_bits=8, act_bytes=1, out_bytes=1)["total"]
    return wl.bytes()["total"]


def _build_tvmq(task, record, libs: Path, name: str, warn=True):
    """Rebuild the record's schedule (default schedule without one): (op, cfg, lib path, compile s, .so bytes)."""
    from ..build.cross import export_lib
    from ..build.from_log import schedule_for

    op, sch, cfg = schedule_for(task, record, warn=warn)
    t0 = time.time()
    ex = compile_mod(sch.mod, task.target.tvm_target())
    compile_s = time.time() - t0
    path = str(libs / f"{name}.so")
    export_lib(ex, path, task.target.cross_cc)
    return op, cfg, path, compile_s, os.path.getsize(path)


def _build_job(a, ctx, wl, variant, record, tuner_label, impl) -> dict:
    """Build one kernel from its record (or the default schedule); a failed build is a job with an error."""
    from ..run.verify import TaskVerifier
    from ..task import Task

    task = Task.make(wl, variant, ctx["target"])
    vname = variant if impl == "tvmq" else f"metaschedule.{variant}"
    safe = f"{wl.name}__{vname}".replace("/", "_")
    job = dict(wl=wl, variant=variant, vname=vname, impl=impl,
               info=dict(tuner=tuner_label, trial=record.get("trial") if record else None,
                         record_ms=(float(np.median(record["times"])) * 1e3 if record and record.get("times")
                                    else None)))
    try:
        op, cfg, lib, compile_s, so_bytes = _build_tvmq(task, record, ctx["libs"], safe, warn=impl == "tvmq")
    except Exception as e:  # noqa: BLE001 - one failed build must not stop the benchmark
        msg = str(e).strip().splitlines()
        job["error"] = f"{type(e).__name__}: {msg[-1][:300] if msg else ''}"
        _say(a, f"{wl.name} {vname}: build failed: {job['error']}")
        return job
    ab = _arg_bytes(op)
    job.update(task=task, cfg=cfg, lib=lib, verifier=TaskVerifier(task, a.seed))
    job["info"].update(compile_s=compile_s, so_bytes=so_bytes, arg_bytes=ab, intensity=wl.flops / ab, config=cfg)
    ctx["builds"].append(dict(workload=wl.name, variant=vname, so_bytes=so_bytes, compile_s=compile_s, arg_bytes=ab,
                              lib=lib, task=task, cfg=cfg, verifier=job["verifier"]))
    return job


def _measure_job(a, ctx, job, t) -> dict:
    """Verify and time one built kernel at ``t`` threads."""
    from ..run.base import BuildResult

    target, runner = ctx["target"], ctx["runner"]
    if "error" in job:
        return _row(job["wl"], job["vname"], job["impl"], target, runner.label, t, [], "build_error", job["error"],
                    base_variant=job["variant"], **job["info"])
    (res,) = runner.run([BuildResult(job["cfg"], "ok", job["lib"], compile_s=job["info"]["compile_s"])],
                        job["verifier"], _settings(a, t))
    r = _row(job["wl"], job["vname"], job["impl"], target, runner.label, t, res.times if res.ok else [], res.status,
             res.error, res.max_abs_err, base_variant=job["variant"], **job["info"])
    _say(a, _progress(r))
    return r


def _progress(r):
    what = f"{r['workload']} {r['variant']} ({r['threads']} thr)"
    if r["verified"]:
        return f"{what}: {r['best_ms']:.3f} ms, {r['gflops']:.1f} {r['unit']}, spread {r['spread_pct']:.0f}%"
    return f"{what}: {r['status']} {r['error']}"


def _measure_peers(a, ctx, wl, t):
    from ..peers import numpy_im2col, onnxruntime_conv

    rows = []
    kw = dict(threads=t, repeat=a.repeat, number=a.number, min_repeat_ms=a.min_repeat_ms, seed=a.seed)
    res = []
    if "ort" in ctx["peers"]:
        # In child processes: TVM's spinning workers in this one would take a core from onnxruntime.
        res += [("ort.conv", onnxruntime_conv.run_isolated("conv", wl, **kw)),
                ("ort.qlinearconv", onnxruntime_conv.run_isolated("qlinearconv", wl, **kw))]
    if "numpy" in ctx["peers"]:
        res.append(("numpy.im2col", numpy_im2col.run(wl, timeout_s=max(60.0, a.timeout * 10), **kw)))
    for name, r in res:
        impl = name.split(".")[0].replace("ort", "onnxruntime")
        rows.append(_row(wl, name, impl, ctx["target"], "local", t, r.times if r.ok else [], r.status, r.error,
                         r.max_abs_err, tuner="-", arg_bytes=_peer_bytes(wl, name),
                         intensity=wl.flops / _peer_bytes(wl, name), peer_info=r.info))
        _say(a, _progress(rows[-1]))
    return rows


def add_ratios(rows, peak: dict | None = None):
    """Time ratios within the run, per (workload, threads): >1 means this row is faster than the base.

    ``vs_float`` / ``vs_im2col``: tvmq's float / im2col; ``vs_ort``: onnxruntime fp32 Conv;
    ``vs_ort_q``: onnxruntime QLinearConv; ``vs_metaschedule``: MetaSchedule's kernel of the same variant.
    ``pct_peak``: % of the measured peak at the same thread count: the int8 (VNNI) peak for integer rows
    when it was measured, else the fp32 FMA peak (``peak_kind`` says which).
    """
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["threads"]), {})[r["variant"]] = r
    for r in rows:
        peers = by[(r["workload"], r["threads"])]
        for col, base in (("vs_float", "float"), ("vs_im2col", "im2col"), ("vs_ort", "ort.conv"),
                          ("vs_ort_q", "ort.qlinearconv"), ("vs_metaschedule", f"metaschedule.{r['base_variant']}")):
            b = peers.get(base) or (peers.get("im2col_float") if base == "im2col" else None)
            r[col] = b["best_ms"] / r["best_ms"] if b and b.get("best_ms") and r.get("best_ms") else None
        if r["impl"] != "tvmq":
            r["vs_metaschedule"] = None
        pk, r["peak_kind"] = _peak_for(peak, r["threads"], r["unit"] == "GOPS")
        r["peak_gflops"] = pk
        r["pct_peak"] = 100.0 * r["gflops"] / pk if r.get("gflops") and pk else None
    return rows


def _peak_for(peak, threads, integer: bool):
    """(peak G(FL)OPS, "int8"/"fp32") at ``threads``: the int8 peak for integer rows where measured."""
    i8 = (peak or {}).get("int8")
    if integer and isinstance(i8, dict) and (i8.get(threads) or {}).get("gops"):
        return i8[threads]["gops"], "int8"
    return (((peak or {}).get("fp32") or {}).get(threads) or {}).get("gflops"), "fp32"


def int8_peak_text(peak) -> str:
    i8 = peak.get("int8")
    if isinstance(i8, dict):
        return ", ".join(f"{t} thr: {e['gops']:.0f} GOPS" if e.get("gops") else f"{t} thr: {e.get('status')}"
                         for t, e in sorted(i8.items())) or "-"
    return str(i8)


# -- the command -----------------------------------------------------------------------------------------
def run(a):
    from ..record import log as recordlog
    from ..report import text_table

    target, layers, suite_label, variants, peers, threads = _parse(a)
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
        log_file = _tune_first(a, target, layers, variants, peers, log_dir)
        log_src = log_src or log_file
    if log_src is not None and log_src.exists():
        records = recordlog.read_dir(log_src)
        _say(a, f"{len(records)} record(s) from {log_src}")
    elif log_src is None:
        notes.append("No `--from-logs` given: every tvmq variant ran its default schedule (untuned).")

    if "numpy" in peers and os.environ.get("OPENBLAS_CORETYPE"):
        notes.append(f"numpy peer: `OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}` is set here; it was unset "
                     "in the numpy peer's own process (the override halves OpenBLAS's speed on this machine).")
    runner = make_runner(target, rpc_settings(a, target))
    local = runner.label == "local"
    if not local:
        if len(threads) > 1:
            notes.append(f"Thread counts {threads} requested; over RPC the board's runtime picks its own thread "
                         f"count, so only one pass ({threads[-1]}) was measured.")
            threads = threads[-1:]
        dropped = [x for x in peers if x in ("ort", "numpy", "metaschedule")]
        if dropped:
            notes.append(f"Peers {dropped} run on the host only; they are not measured for the board target "
                         f"{target.name}.")
        peers = []
    if runner.label == "rpc-emulated":
        notes.insert(0, "**EMULATED**: every time below is qemu's emulation of the board on this machine, not a "
                        "real board's; the flow, correctness and generated code are real.")
    machine = for_target(target, runner.label, getattr(getattr(runner, "rpc", None), "address", None))
    ctx = dict(target=target, runner=runner, threads=threads, peers=peers, libs=out / "libs", builds=[])
    t_start = time.time()
    rows = []
    try:
        from ..peers import peak as peak_mod

        from ..build.from_log import best_record
        from ..task import Task

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
        for t in threads:
            p1 = peak_mod.measure(target, runner, _settings(a, t), [t], seed=a.seed, log=log)
            peak = p1 if peak is None else peak_mod.merge(peak, p1, passes=False)
            for wl in layers:
                rows += [_measure_job(a, ctx, j, t) for j in jobs if j["wl"] is wl]
                if peers:
                    rows += _measure_peers(a, ctx, wl, t)
            if target.runner == "local":  # again after the layers: on a shared machine one pass may be disturbed
                _say(a, f"measuring the peak again ({t} thread(s))")
                peak = peak_mod.merge(peak, peak_mod.measure(target, runner, _settings(a, t), [t], seed=a.seed,
                                                             log=log), passes=False)
                peak["passes"] = 2
        rows.sort(key=lambda r: (r["threads"], [w.name for w in layers].index(r["workload"])))
        if "metaschedule" in peers and not any(r["impl"] == "metaschedule" for r in rows):
            notes.append("MetaSchedule: no `tuner=metaschedule` records for these layers in the logs "
                         "(make them with `tvmq tune --tuner metaschedule`, or bench `--trials N`).")
        add_ratios(rows, peak)
        perf = _perf(a, ctx) if a.perf else None
    finally:
        runner.close()
    meta = dict(target=target.name, target_json=target.target, suite=a.suite, variants=variants, peers=peers,
                threads=threads, runner=runner.label, logs=str(log_src) if log_src else None, records=len(records),
                settings={k: getattr(a, k) for k in ("number", "repeat", "min_repeat_ms", "timeout", "flush_cache",
                                                       "seed")},
                machine=_machine(), date=datetime.datetime.now().isoformat(timespec="seconds"),
                bench_s=round(time.time() - t_start, 1), notes=notes)
    curves = tuning_curves(records, target, layers)
    write_outputs(out, rows, peak, meta, layers, ctx["builds"], curves, perf, plots=not a.no_plots)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(_json_rows(rows), indent=2))
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


def _json_rows(rows):
    keep = [c for c in CSV_COLUMNS] + ["target_json", "config", "times_s", "peer_info", "record_ms"]
    return [{k: r.get(k) for k in keep if k in r} for r in rows]


def _machine() -> dict:
    d = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import tvm

        d["tvm"] = tvm.__version__
        d["llvm_cpu"] = str(tvm.target.codegen.llvm_get_system_cpu())
    except Exception:  # noqa: BLE001
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                d["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    d["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return d


def _peak_line(peak) -> str:
    parts = []
    for t, e in sorted((peak.get("fp32") or {}).items()):
        parts.append(f"{t} thr: {e['gflops']:.1f} GFLOPS" if e.get("gflops") else f"{t} thr: {e.get('status')}")
    bw = [f"{t} thr: {e['gbps']:.1f} GB/s" for t, e in sorted((peak.get("bandwidth") or {}).items()) if e.get("gbps")]
    return (f"measured fp32 peak: {', '.join(parts)}; copy bandwidth: {', '.join(bw) or '-'}; "
            f"int8 peak: {int8_peak_text(peak)}")


# -- perf ------------------------------------------------------------------------------------------------------
def _perf(a, ctx):
    from ..peers import perf

    ok, why = perf.available()
    if not ok:
        _say(a, f"--perf: not available: {why}")
        return {"available": False, "why": why}
    if ctx["runner"].label != "local":
        return {"available": False, "why": "counters are only read for local targets"}
    t = max(ctx["threads"])
    out = {"available": True, "threads": t, "rows": []}
    import tempfile

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


# -- tuning curves ----------------------------------------------------------------------------------------------
def tuning_curves(records, target, layers) -> list[dict]:
    """Best-so-far GFLOPS against trial, per (layer, variant, tuner), from the records of these layers."""
    tj = json.dumps(target.target, sort_keys=True)
    names = {wl.key: wl for wl in layers}
    groups = {}
    for r in records:
        wl = names.get(r.get("workload_key"))
        if wl is None or json.dumps(r.get("target"), sort_keys=True) != tj:
            continue
        groups.setdefault((wl.key, r["variant"], r.get("tuner", "?"), r.get("task_key")), []).append(r)
    out = []
    for (key, variant, tuner, _), recs in groups.items():
        wl = names[key]
        recs.sort(key=lambda r: (r.get("trial") or 0, r.get("timestamp") or 0))
        best, xs, ys = 0.0, [], []
        for i, r in enumerate(recs, 1):
            if r["status"] == "ok" and r.get("times"):
                best = max(best, wl.flops / float(np.median(r["times"])) / 1e9)
            xs.append(r.get("trial") or i)
            ys.append(best)
        out.append(dict(workload=wl.name, variant=variant, tuner=tuner, trials=xs, best_gflops=ys))
    return out


# -- outputs ----------------------------------------------------------------------------------------------------
def memory_table(layers) -> list[dict]:
    """Bytes of weights per variant (float, codebook at 1..8 bits incl. its table, int8, int4), im2col extra."""
    out = []
    for wl in layers:
        d = {"workload": wl.name, "float": wl.bytes(32)["weights"]}
        for b in range(1, 9):
            wb = wl.bytes(weight_bits=b, codebook_entries=2 ** b)
            d[f"cb{b}"] = wb["weights"] + wb["codebook"]
        d["int8"] = wl.bytes(8)["weights"]
        d["int4"] = wl.bytes(4)["weights"]
        d["im2col_f32_extra"] = wl.im2col_bytes(4)
        d["im2col_i8_extra"] = wl.im2col_bytes(1)
        out.append(d)
    return out


def _kib(v):
    return "-" if v is None else (f"{v / 1024:.1f}" if v < 1024 * 1024 else f"{v / 2 ** 20:.2f} M")


def write_outputs(out: Path, rows, peak, meta, layers, builds, curves, perf, plots=True):
    from ..report import markdown_table

    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_COLUMNS})
    (out / "results.json").write_text(json.dumps(dict(meta=meta, peak=_jsonable(peak), rows=_json_rows(rows),
                                                      builds=[{k: v for k, v in b.items()
                                                               if k not in ("task", "verifier", "cfg")}
                                                              for b in builds],
                                                      perf=perf, tuning_curves=curves), indent=1, default=str))
    pngs = []
    if plots:
        try:
            pngs = make_plots(out, rows, peak, meta, curves)
        except ImportError:
            meta["notes"].append("matplotlib is not installed: no plots (pip install matplotlib).")
    emu = meta["runner"] == "rpc-emulated"
    L = [f"# tvmq bench: {meta['suite']} on {meta['target']}" + (" (EMULATED)" if emu else ""), ""]
    L += [f"- date {meta['date']}, bench time {meta['bench_s']} s",
          f"- target `{json.dumps(meta['target_json'], sort_keys=True)}`, runner `{meta['runner']}`",
          f"- machine: {meta['machine'].get('cpu', '?')} ({meta['machine'].get('cpus')} CPUs, LLVM cpu "
          f"`{meta['machine'].get('llvm_cpu')}`), {meta['machine']['platform']}, TVM {meta['machine'].get('tvm')}",
          f"- threads {meta['threads']}; measurement {meta['settings']} (median of `repeat` samples; spread = "
          f"(max - min) / median of the samples)",
          f"- tuning records: {meta['logs'] or 'none'} ({meta['records']} records); tvmq rows use the best record "
          "of xgb when there is one, else the best of any tvmq tuner (column `tuner`; `default` = no record, "
          "the space's default schedule)",
          f"- peers: {', '.join(meta['peers']) or 'none'}", ""]
    for n in meta["notes"]:
        L.append(f"> {n}")
    if meta["notes"]:
        L.append("")
    L += ["## Measured peak", "", "fp32 FMA microkernel (" + str(peak.get("kernel")) + ") and a parallel copy "
          "kernel (read + write bytes), both built with TVM, verified, timed like the kernels below"
          + ("; measured before and after the layers" if peak.get("passes", 1) > 1 else "")
          + ". The peak is the best sample (`*_median`: the median of the samples of that pass).", ""]
    prow = []
    for t in sorted(peak.get("fp32") or {}):
        e, bw = peak["fp32"][t], (peak.get("bandwidth") or {}).get(t, {})
        i8 = peak["int8"].get(t, {}) if isinstance(peak.get("int8"), dict) else {}
        prow.append(dict(threads=t, fp32_gflops=e.get("gflops"), fp32_median=e.get("median"), int8_gops=i8.get("gops"),
                         int8_median=i8.get("median"), copy_gbps=bw.get("gbps"),
                         ridge_flop_per_byte=(e["gflops"] / bw["gbps"]) if e.get("gflops") and bw.get("gbps")
                         else None, status=e.get("status")))
    over = [r for r in rows if (r.get("pct_peak") or 0) > 100 and r["unit"] == "GFLOPS"]
    if over:
        top = max(r["pct_peak"] for r in over)
        L += [f"> **Note**: {len(over)} float result(s) exceed the measured fp32 peak (up to {top:.0f}%). Far above "
              "100%, the peak passes were slowed by other load: re-run when the machine is quiet. A few percent "
              "above, the clock differed between the peak pass and the layer (turbo), or the peak kernel falls "
              "short of the machine's limit: read such rows as at peak.", ""]
    L += [markdown_table(prow, ["threads", "fp32_gflops", "fp32_median", "int8_gops", "int8_median", "copy_gbps",
                                "ridge_flop_per_byte", "status"]),
          "", (f"int8 peak kernel: {peak['int8_kernel']}; `pct_peak` of integer rows is against it "
               "(`peak_kind`)." if peak.get("int8_kernel") else
               f"int8 peak: {peak['int8']}; `pct_peak` of integer rows is against the fp32 FMA peak."), ""]
    L += ["## Results", "",
          "GFLOPS for float paths, GOPS for integer ones (2 ops per multiply-add). Ratios are time ratios against "
          "the named kernel at the same thread count in this run (> 1: this row is faster): `vs_float` tvmq "
          "float, `vs_im2col` tvmq im2col (float), `vs_ort` onnxruntime fp32 Conv, `vs_ort_q` onnxruntime "
          "QLinearConv, `vs_metaschedule` MetaSchedule's kernel of the same variant.", ""]
    for t in meta["threads"]:
        L += [f"### {t} thread(s)", "", markdown_table([r for r in rows if r["threads"] == t], COLUMNS), ""]
    failed = [r for r in rows if not r["verified"]]
    if failed:
        L += ["### Failed or unverified", "",
              markdown_table(failed, ["workload", "variant", "threads", "status", "error"]), ""]
    L += ["## Memory", "", "Bytes of weights per variant (KiB; M = MiB): float32, codebook at 1..8 bits (indices "
          "plus the 2^b-entry float table), int8, int4; extra bytes of the im2col matrix (fp32 and int8).", ""]
    mcols = ["workload", "float", *[f"cb{b}" for b in range(1, 9)], "int8", "int4", "im2col_f32_extra",
             "im2col_i8_extra"]
    L += [markdown_table([{k: (_kib(v) if k != "workload" else v) for k, v in d.items()} for d in memory_table(layers)],
                         mcols), ""]
    L += ["Generated code and compile time of the kernels built in this run (`arg_bytes`: the kernel's inputs and "
          "output, its working set):", "",
          markdown_table([dict(b, compile_s=round(b["compile_s"], 3)) for b in builds],
                         ["workload", "variant", "so_bytes", "compile_s", "arg_bytes"]), ""]
    L += ["## Hardware counters (`--perf`)", ""]
    if perf is None:
        L += ["Not requested (run with `--perf`).", ""]
    elif not perf.get("available"):
        L += [f"Not available: {perf['why']}.", ""]
    else:
        prs = [dict(r, **{k: r.get(k) for k in ("ipc", "cache_miss_rate")}) for r in perf["rows"]]
        L += [f"{perf['threads']} thread(s), {prs[0].get('iters') if prs else '-'} runs per kernel, minus a "
              "zero-run baseline:", "",
              markdown_table(prs, ["workload", "variant", "ipc", "cache_miss_rate", "instructions_per_run",
                                   "cache-misses_per_run", "L1-dcache-load-misses_per_run",
                                   "LLC-load-misses_per_run", "error"]), ""]
    if pngs:
        L += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    L += ["## Files", "", "`results.csv` (every row), `results.json` (rows, peak, builds, curves, meta), "
          "`libs/` (the kernels measured)", ""]
    (out / "report.md").write_text("\n".join(L))


def _jsonable(peak):
    return json.loads(json.dumps(peak, default=str))


# -- plots --------------------------------------------------------------------------------------------------------
_COLORS = {}


def _color(name):
    import matplotlib.pyplot as plt

    if name not in _COLORS:
        cyc = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors + plt.get_cmap("Set1").colors
        _COLORS[name] = cyc[len(_COLORS) % len(cyc)]
    return _COLORS[name]


def _order(rows):
    seen = []
    for r in rows:
        if r["variant"] not in seen:
            seen.append(r["variant"])
    return seen


def _bars(ax, rows, layers, names, key, title, ylabel, hline=None, hlabel=None, hlines=()):
    n = max(1, len(names))
    width = 0.8 / n
    x = np.arange(len(layers))
    for i, name in enumerate(names):
        vals, missing = [], []
        for wl in layers:
            r = next((r for r in rows if r["workload"] == wl and r["variant"] == name), None)
            ok = r is not None and r.get(key) is not None
            vals.append(r[key] if ok else 0.0)
            missing.append(r is not None and not ok)
        xs = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(xs, vals, width, label=name, color=_color(name))
        if len(layers) * n <= 60:  # values on the bars while they stay legible
            ax.bar_label(bars, labels=[f"{v:.3g}" if v else "" for v in vals], rotation=90, fontsize=6, padding=2)
        for xi, miss in zip(xs, missing):
            if miss:  # measured but failed or unverified: say so instead of a silent zero
                ax.text(xi, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
    if hline is not None:
        ax.axhline(hline, color="k", ls="--", lw=1, label=hlabel)
    for y, ls, lab in hlines:
        ax.axhline(y, color="k", ls=ls, lw=1, label=lab)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the value labels
    ax.set_xticks(x, layers, rotation=20 if len(layers) > 6 else 0, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def make_plots(out: Path, rows, peak, meta, curves) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    emu = " (EMULATED)" if meta["runner"] == "rpc-emulated" else ""
    t = max(meta["threads"])
    rt = [r for r in rows if r["threads"] == t]
    layers = list(dict.fromkeys(r["workload"] for r in rows))
    names = _order(rt)
    pk = ((peak.get("fp32") or {}).get(t) or {}).get("gflops")
    made = []
    wide = max(8.0, 1.2 + 0.28 * len(layers) * max(1, len(names)))

    fig, ax = plt.subplots(figsize=(min(wide, 22), 5))
    pk8 = ((peak.get("int8") if isinstance(peak.get("int8"), dict) else {}).get(t) or {}).get("gops")
    _bars(ax, rt, layers, names, "gflops", f"{meta['target']}{emu}: GFLOPS (GOPS for int) per layer, {t} thread(s)",
          "GFLOPS / GOPS", pk, f"measured fp32 peak {pk:.0f}" if pk else None,
          [(pk8, ":", f"measured int8 (VNNI) peak {pk8:.0f}")] if pk8 else ())
    ax.legend(fontsize=7, ncol=min(6, len(names) + 1), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    made.append(out / "gflops.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)

    fig, axs = plt.subplots(2, 1, figsize=(min(wide, 22), 8.5))
    for ax, key, base in ((axs[0], "vs_float", "tvmq float"), (axs[1], "vs_im2col", "tvmq im2col (float)")):
        nm = [n for n in names if any(r["variant"] == n and r.get(key) for r in rt)]
        _bars(ax, rt, layers, nm, key, f"speedup over {base} (time ratio, {t} thread(s)){emu}", "x faster", 1.0,
              "1x")
    h, lab = axs[0].get_legend_handles_labels()
    fig.legend(h, lab, fontsize=7, ncol=min(8, len(lab)), loc="lower center")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    made.append(out / "speedup.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)

    cl = list(dict.fromkeys(c["workload"] for c in curves))
    ncol = min(3, max(1, len(cl)))
    nrow = max(1, -(-len(cl) // ncol))
    fig, axs = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
    styles = {"xgb": "-", "random": "--", "grid": ":", "metaschedule": "-."}
    for i, wl in enumerate(cl):
        ax = axs[i // ncol][i % ncol]
        for c in (c for c in curves if c["workload"] == wl):
            lab = f"{c['variant']} ({c['tuner']})"
            if len(c["trials"]) == 1:
                ax.plot(c["trials"], c["best_gflops"], marker="*", ms=11, ls="", color=_color(c["variant"]), label=lab)
            else:
                ax.plot(c["trials"], c["best_gflops"], styles.get(c["tuner"], "-"), color=_color(c["variant"]),
                        label=lab, lw=1.5)
        ax.set_title(f"{wl}: best so far", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial")
        ax.set_ylabel("GFLOPS / GOPS")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for j in range(len(cl), nrow * ncol):
        axs[j // ncol][j % ncol].axis("off")
    if not cl:
        axs[0][0].text(0.5, 0.5, "no tuning records for these layers\n(bench --from-logs DIR, or --trials N)",
                       ha="center", va="center")
        axs[0][0].axis("off")
    fig.suptitle(f"tuning curves from the logs{emu} (MetaSchedule: one point at its trial budget)", fontsize=10)
    fig.tight_layout()
    made.append(out / "tuning_curves.png")
    fig.savefig(made[-1], dpi=100)
    plt.close(fig)

    if len(meta["threads"]) > 1:
        ncol = min(3, len(layers))
        nrow = -(-len(layers) // ncol)
        fig, axs = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
        for i, wl in enumerate(layers):
            ax = axs[i // ncol][i % ncol]
            for n in _order(rows):
                pts = sorted((r["threads"], r["gflops"]) for r in rows
                             if r["workload"] == wl and r["variant"] == n and r.get("gflops"))
                if pts:
                    ax.plot(*zip(*pts), marker="o", color=_color(n), label=n)
            pts = sorted((th, e["gflops"]) for th, e in (peak.get("fp32") or {}).items() if e.get("gflops"))
            if pts:
                ax.plot(*zip(*pts), "k--", label="fp32 peak")
            ax.set_xticks(meta["threads"])
            ax.set_title(wl, fontsize=10)
            ax.set_xlabel("threads")
            ax.set_ylabel("GFLOPS / GOPS")
            ax.grid(alpha=0.3)
        for j in range(len(layers), nrow * ncol):
            axs[j // ncol][j % ncol].axis("off")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=_color(n), marker="o", label=n) for n in _order(rows)]
        handles.append(Line2D([], [], color="k", ls="--", label="measured fp32 peak"))
        fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(8, len(handles)))
        fig.suptitle(f"thread scaling: GFLOPS (GOPS for int) against TVM/BLAS/onnxruntime threads{emu}", fontsize=10)
        fig.tight_layout(rect=(0, 0.07 if nrow == 1 else 0.04, 1, 1))
        made.append(out / "threads.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)

    bw = ((peak.get("bandwidth") or {}).get(t) or {}).get("gbps")
    fig, ax = plt.subplots(figsize=(9, 6))
    pts = [r for r in rt if r.get("gflops") and r.get("intensity")]
    xs = [r["intensity"] for r in pts] or [1.0]
    lo, hi = min(xs + [1.0]) / 3, max(xs + [1000.0]) * 3
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    if pk and bw:
        ax.plot(grid, np.minimum(pk, bw * grid), "k-", lw=2, label=f"roofline: {pk:.0f} GFLOPS, {bw:.1f} GB/s copy")
    elif pk:
        ax.axhline(pk, color="k", lw=2, label=f"fp32 peak {pk:.0f}")
    i8 = peak.get("int8") if isinstance(peak.get("int8"), dict) else {}
    pk8 = (i8.get(t) or {}).get("gops")
    if pk8 and bw:
        ax.plot(grid, np.minimum(pk8, bw * grid), "k--", lw=1.5, label=f"int8 (VNNI) roof: {pk8:.0f} GOPS")
    markers = "os^Dv<>phX*"
    for i, wl in enumerate(layers):
        for r in (r for r in pts if r["workload"] == wl):
            ax.scatter(r["intensity"], r["gflops"], color=_color(r["variant"]), marker=markers[i % len(markers)],
                       s=40, edgecolors="k", linewidths=0.4)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_color(n), marker="o", ls="", label=n) for n in names]
    handles += [Line2D([], [], color="gray", marker=markers[i % len(markers)], ls="", label=wl)
                for i, wl in enumerate(layers)]
    h0, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h0 + handles, fontsize=7, loc="lower right", ncol=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (ops per byte of inputs + weights + output)")
    ax.set_ylabel("GFLOPS / GOPS")
    ax.set_title(f"roofline, {t} thread(s){emu}" + ("" if pk8 else " (int8 peak not measured: one fp32 roof)"),
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    made.append(out / "roofline.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)
    return made
