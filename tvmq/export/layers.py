"""Export a layer library: every (layer, variant) built from its best record into one ``lib.so``.

One shared library holds one function per layer and variant (named ``<layer>__<variant>``),
so a deployment copies one file and checks one checksum; the manifest maps each function to
its workload, variant, operator parameters, arguments and the record it was built from.
A layer with no record gets the default schedule of its search space, with a warning.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from ..build.lower import compile_mod
from ..errors import TvmqError
from . import LIB_NAME
from ..record.log import median_time
from ..build.from_log import best_record, schedule_for
from ..templates import instantiate, template_module
from ..build.cross import export_lib
from ..task import Task
from . import manifest as M


def function_name(layer: str, variant: str) -> str:
    return re.sub(r"\W", "_", f"{layer}__{variant}")


def _record_summary(rec: dict | None) -> dict | None:
    """The record as logged (every field), plus its median in ms; None for the default schedule."""
    if rec is None:
        return None

    return dict(rec, median_ms=round(median_time(rec) * 1e3, 6))


def scheduled_function(task, records, warn=True, op_overrides: dict | None = None, record: dict | None = None):
    """(op, PrimFunc, cfg, record, op_kwargs) for ``task``: the best record's config, else the default.

    ``op_overrides`` rebuild the operator with other epilogue parameters (bias, dequant) while
    keeping the tuned loop schedule: the template applies the same config to the new op.
    ``record``: one of the task's records to build instead of the best (joint_layouts.pick); its choice's
    note is then the caller's to say.
    """

    rec = record if record is not None else best_record(task, records, warn_prefix="tvmq export" if warn else None)
    if op_overrides:
        cfg = task.space().complete(rec["config"]) if rec is not None and rec.get("tuner") != "metaschedule" else task.space().default
        if rec is not None and rec.get("tuner") == "metaschedule":
            print(f"tvmq export: warning: {task.workload.name} {task.variant}: a MetaSchedule record cannot be "
                  "re-applied to a fused epilogue; using the default schedule", file=sys.stderr)
            rec = None
        op, sch = instantiate(task.space(), task.op_name, task.workload, {**task.params, **op_overrides}, cfg)
    else:
        op, sch, cfg = schedule_for(task, rec, warn=False)
    kwargs = {**task.params, **template_module(task.template).op_params(cfg), **(op_overrides or {})}
    if "planar" in op.params:  # the index packing the library reads, stated rather than defaulted
        kwargs["planar"] = op.params["planar"]
    return op, sch.mod["main"], cfg, rec, kwargs


def function_entry(name, task, op, cfg, rec, op_kwargs) -> dict:
    return {
        "name": name,
        "workload": task.workload.to_dict(),
        "workload_key": task.workload.key,
        "variant": task.variant,
        "op": op.name,
        "op_variant": task.op_name,
        "params": task.params,
        "op_params": op.params,
        "make_op": op_kwargs,
        "args": [a.to_dict() for a in op.args],
        "config": cfg,
        "record": _record_summary(rec),
        "schedule": "tuned" if rec is not None else "default",
    }


def compile_functions(funcs: dict, target) -> object:
    """One IRModule of PrimFuncs (name -> PrimFunc), compiled for ``target``: an Executable."""
    import tvm  # lazy: heavy (TVM)

    mod = tvm.IRModule({name: f.with_attr("global_symbol", name) for name, f in funcs.items()})
    try:
        return compile_mod(mod, target.tvm_target())
    except Exception as e:  # noqa: BLE001  (TVM raises TVMError / InternalError)
        msg = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        raise TvmqError(f"compiling the library for target {target.name!r} failed: {msg[-1] if msg else e}") from None


def export_layers(target, workloads, variants, records, out_dir, quiet=False) -> dict:
    """Build every (workload, variant) into ``out_dir/lib.so``; write the manifest; return it."""

    out = Path(out_dir)
    t0 = time.time()
    funcs, entries = {}, []
    for wl in workloads:
        for v in variants:
            task = Task.make(wl, v, target)
            name = function_name(wl.name, v)
            if name in funcs:
                raise TvmqError(f"two layers export as the same function {name!r}; give the layers distinct names")
            op, func, cfg, rec, kw = scheduled_function(task, records)
            funcs[name] = func
            entries.append(function_entry(name, task, op, cfg, rec, kw))
    ex = compile_functions(funcs, target)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        lib = export_lib(ex, str(Path(tmp) / LIB_NAME), target.cross_cc)
        Path(lib).replace(out / LIB_NAME)
    (out / "weights.npz").unlink(missing_ok=True)
    man = M.make("layers", target, entries, out, build_s=round(time.time() - t0, 2))
    M.write(out, man)
    if not quiet:
        tuned = sum(e["schedule"] == "tuned" for e in entries)
        print(f"tvmq export: {len(entries)} function(s) ({tuned} tuned, {len(entries) - tuned} default schedule) "
              f"for target {target.name}: {LIB_NAME} {(out / LIB_NAME).stat().st_size} bytes "
              f"in {time.time() - t0:.1f} s", file=sys.stderr)
    return man
