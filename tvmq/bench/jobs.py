"""Bench jobs: pick each kernel's record, build it, verify and time it, and time the peers, as result rows."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..build.lower import compile_mod
from ..run.settings import MeasureSettings
from ..variants import is_integer
from ..build.from_log import choice_for
from ..build.cross import export_lib
from ..build.from_log import schedule_for
from ..run.verify import TaskVerifier
from ..task import Task
from ..run.base import BuildResult
from ..peers import numpy_im2col, onnxruntime_conv, torch_conv


TVMQ_TUNERS = ("xgb", "random", "grid")


PEER_VARIANTS = ("ort.conv", "ort.qlinearconv", "numpy.im2col", "torch.conv", "torch.conv_bf16", "torch.qconv")
INT_PEERS = ("ort.qlinearconv", "torch.qconv")


def _say(a, msg):
    if not a.quiet:
        print(f"tvmq bench: {msg}", file=sys.stderr, flush=True)


def _settings(a, threads: int):
    """The shared flags' MeasureSettings, at ``threads`` (bench's --threads is a list)."""
    return MeasureSettings.from_flags(argparse.Namespace(**dict(vars(a), threads=threads)))


def pick_record(task, records, tuner: str = "auto", machine=None, transfer: bool = False, notes=None):
    """(record, tuner label) for ``machine``: xgb's best when present (``auto``), else the best of any tvmq
    tuner; other machines' records only with ``transfer``, and then named in ``notes``."""

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
         "unit": "GOPS" if is_integer(base_variant or variant) or variant in INT_PEERS else "GFLOPS",
         "verified": ok, "max_abs_err": max_abs_err, "status": status, "error": error, "times_s": list(times or [])}
    if ok:
        r.update(_stats(times))
        r["gflops"] = wl.flops / (r["best_ms"] / 1e3) / 1e9
    r.update(extra)
    return r


def _arg_bytes(op) -> int:
    return int(sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in op.args))


def _peer_bytes(wl, variant) -> int:
    if variant in INT_PEERS:
        return wl.bytes(weight_bits=8, act_bytes=1, out_bytes=1)["total"]
    if variant == "torch.conv_bf16":
        return wl.bytes(weight_bits=16, act_bytes=2, out_bytes=2)["total"]
    return wl.bytes()["total"]


def build_kernel(task, record, libs: Path, name: str, warn=True):
    """Rebuild the record's schedule (default schedule without one): (op, cfg, lib path, compile s, .so bytes)."""

    op, sch, cfg = schedule_for(task, record, warn=warn)
    t0 = time.time()
    ex = compile_mod(sch.mod, task.target.tvm_target())
    compile_s = time.time() - t0
    path = str(libs / f"{name}.so")
    export_lib(ex, path, task.target.cross_cc)
    return op, cfg, path, compile_s, os.path.getsize(path)


def _build_job(a, ctx, wl, variant, record, tuner_label, impl) -> dict:
    """Build one kernel from its record (or the default schedule); a failed build is a job with an error."""

    task = Task.make(wl, variant, ctx["target"])
    vname = variant if impl == "tvmq" else f"metaschedule.{variant}"
    safe = f"{wl.name}__{vname}".replace("/", "_")
    job = dict(wl=wl, variant=variant, vname=vname, impl=impl,
               info=dict(tuner=tuner_label, trial=record.get("trial") if record else None,
                         record_ms=(float(np.median(record["times"])) * 1e3 if record and record.get("times")
                                    else None)))
    try:
        # pick_record has said where the record came from, or that there is none
        op, cfg, lib, compile_s, so_bytes = build_kernel(task, record, ctx["libs"], safe, warn=False)
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

    rows = []
    kw = dict(threads=t, repeat=a.repeat, number=a.number, min_repeat_ms=a.min_repeat_ms, seed=a.seed)
    res = []
    if "ort" in ctx["peers"]:
        # In child processes: TVM's spinning workers in this one would take a core from onnxruntime.
        res += [("ort.conv", onnxruntime_conv.run_isolated("conv", wl, **kw)),
                ("ort.qlinearconv", onnxruntime_conv.run_isolated("qlinearconv", wl, **kw))]
    if "torch" in ctx["peers"]:  # optional: an unavailable torch is a row that says so
        res += [(torch_conv.NAMES[k], torch_conv.run_isolated(k, wl, **kw)) for k in torch_conv.KINDS]
    if "numpy" in ctx["peers"]:
        res.append(("numpy.im2col", numpy_im2col.run(wl, timeout_s=max(60.0, a.timeout * 10), **kw)))
    for name, r in res:
        impl = name.split(".")[0].replace("ort", "onnxruntime")
        rows.append(_row(wl, name, impl, ctx["target"], "local", t, r.times if r.ok else [], r.status, r.error,
                         r.max_abs_err, tuner="-", arg_bytes=_peer_bytes(wl, name),
                         intensity=wl.flops / _peer_bytes(wl, name), peer_info=r.info))
        _say(a, _progress(rows[-1]))
    return rows
