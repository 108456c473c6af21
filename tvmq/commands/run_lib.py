"""``tvmq run DIR``: load an export with the TVM runtime only, check it, run it, verify it.

Checks first (clear one-line errors): the manifest, the TVM version, the target, and the
sha256 of the library and weights. A layer library runs every function on seeded random
inputs and compares it with the numpy reference; a model runs on a random input, and with
``--compare-onnx MODEL.onnx`` against onnxruntime (exit 1 beyond the quantization's
tolerance). With ``--rpc-tracker`` (or for an edge export, the emulated board) the library
is uploaded to the board and runs there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from ..run.settings import RPCSettings
from ..export import manifest as M
from ..export import runtime as RT
from ..export import model as MD


def add_arguments(p):
    p.add_argument("dir", metavar="DIR", help="a `tvmq export --out` folder")
    p.add_argument("--target", default=None, help="refuse the library unless it was built for this target")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--repeat", type=int, default=0, help="also time: this many runtime samples (default 0: no timing)")
    p.add_argument("--threads", type=int, default=None, help="TVM runtime threads here (default: all cores)")
    p.add_argument("--functions", default=None, help="layer libraries: only these functions (comma-separated)")
    p.add_argument("--compare-onnx", metavar="MODEL", help="models: run onnxruntime on MODEL with the same input")
    p.add_argument("--eval", metavar="DATA", help="models: top-1 accuracy on an .npz with x, y (and of MODEL with "
                                                  "--compare-onnx)")
    p.add_argument("--json", help="write the results as JSON")
    g = p.add_argument_group("RPC")
    g.add_argument("--rpc-tracker", help="HOST:PORT of a TVM RPC tracker: run on the board registered there")
    g.add_argument("--rpc-key", help="device key at the tracker (default: the export's target's key)")
    g.add_argument("--local", action="store_true", help="an edge export: do not start the emulated board")


def _rpc(a, man):

    key = a.rpc_key or man["target"].get("rpc_key") or RPCSettings().key
    if a.rpc_tracker:
        from ..edge import is_emulated  # the emulated board: only for edge exports

        rpc = RPCSettings.parse(a.rpc_tracker, key)
        return rpc, is_emulated(rpc)
    if man["target"].get("arch") != __import__("platform").machine() and not a.local:
        from ..edge import board  # the emulated board: only for edge exports

        return board.ensure_up(key=key), True
    return None, False


def run(a):

    RT.set_threads(a.threads)
    man = M.read(a.dir)
    rpc, emulated = _rpc(a, man)
    ex = RT.open_export(a.dir, rpc, a.target, emulated)
    for w in ex.warnings:
        RT.say(f"warning: {w}")
    where = {"local": "here", "rpc": f"on the board at {rpc.address if rpc else ''}",
             "rpc-emulated": "on the emulated board (qemu Cortex-A53; timings are emulated)"}[ex.where]
    RT.say(f"{ex.kind} export for target {man['target']['name']}: checksums, TVM {man['versions']['tvm']} and "
           f"target ok; running {where}")
    try:
        if ex.kind == "layers":
            return _run_layers(a, ex)
        return _run_model(a, ex)
    finally:
        ex.close()


def _run_layers(a, ex):

    if a.compare_onnx or a.eval:
        raise TvmqError("--compare-onnx/--eval apply to model exports; this is a layer library")
    only = [f.strip() for f in a.functions.split(",")] if a.functions else None
    if only:
        missing = sorted(set(only) - {f["name"] for f in ex.functions})
        if missing:
            raise TvmqError(f"no function(s) {missing} in the library; it has {[f['name'] for f in ex.functions]}")
    rows = RT.verify_layers(ex, a.seed, a.repeat, only)
    _print_rows(rows)
    bad = [r["function"] for r in rows if not r["ok"]]
    _write_json(a, {"kind": "layers", "where": ex.where, "rows": rows})
    if bad:
        RT.say(f"{len(bad)} of {len(rows)} function(s) disagree with numpy: {bad}")
        return 1
    RT.say(f"all {len(rows)} function(s) match numpy")
    return 0


def _print_rows(rows):
    for r in rows:
        t = f"  {r['median_ms']:9.3f} ms {r['gflops']:7.1f} GFLOPS" if "median_ms" in r else ""
        err = "-" if r["max_abs_err"] is None else f"{r['max_abs_err']:.2e}"
        status = "ok" if r["ok"] else "WRONG" if r["max_abs_err"] is not None else "ERROR " + r.get("error", "")
        print(f"{r['function']:<36} {r['schedule']:<8} max_abs_err {err:>9}  {status}{t}")


def _run_model(a, ex):

    if a.functions:
        raise TvmqError("--functions applies to layer libraries; this is a model export")
    mr = RT.ModelRunner(ex)
    rows = RT.verify_layers(ex, a.seed)  # each tvmq kernel of the model against numpy
    _print_rows(rows)
    bad = [r["function"] for r in rows if not r["ok"]]
    x = RT.random_input(mr.info, a.seed)
    y = mr.run(x)
    res = {"kind": "model", "where": ex.where, "kernels": rows, "output_shape": list(y.shape),
           "finite": bool(np.isfinite(y).all())}
    if bad:
        RT.say(f"{len(bad)} of {len(rows)} kernel(s) disagree with numpy: {bad}")
    else:
        RT.say(f"all {len(rows)} tvmq kernel(s) of the model match numpy")
    print(f"output {list(y.shape)} {y.dtype}, |y| max {float(np.abs(y).max()):.4g}, finite: {res['finite']}")
    rc = 0 if res["finite"] and not bad else 1
    if a.repeat:
        ts = mr.latency(x, a.repeat)
        res["latency_ms"] = float(np.median(ts)) * 1e3
        print(f"latency {res['latency_ms']:.3f} ms (median of {a.repeat}, {ex.where}"
              f"{', emulated' if ex.where == 'rpc-emulated' else ''})")
    if a.compare_onnx:
        cmp = MD.compare_with_onnx(mr, a.compare_onnx, x)
        res["compare_onnx"] = cmp
        for line in cmp["lines"]:
            print(line)
        if not cmp["ok"]:
            rc = 1
    if a.eval:
        acc = MD.evaluate(mr, a.eval, a.compare_onnx)
        res["eval"] = acc
        print(f"top-1 on {a.eval}: exported {acc['exported']:.4f}"
              + (f", onnxruntime {acc['onnx']:.4f}" if acc.get("onnx") is not None else "")
              + f" ({acc['n']} samples)")
    _write_json(a, res)
    return rc


def _write_json(a, obj):
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(obj, indent=1, default=float) + "\n")
        print(f"tvmq run: wrote {a.json}", file=sys.stderr)
