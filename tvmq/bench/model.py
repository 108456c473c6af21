"""A whole exported model against its peers on this machine: ``tvmq bench --export DIR``.

Three implementations of the same network on the same seeded input, each timed in a process of
its own (TVM's thread pool keeps spinning after a run and would take a core from the next side):

* ``tvmq``: the exported library (tvmq kernels in a Relax VM), weights from weights.npz;
* ``onnxruntime``: the float ONNX model (``intra_op_num_threads`` = threads, all graph optimizations);
* ``relax``: the float model through TVM's ONNX frontend and ``tvm.compile`` with the default
  pipeline (no tuning: what TVM gives without tvmq), weights as constants.

Latency: ``run.timing.time_callable`` over a call from Python (input on the device, output copied
back), median of ``repeat`` samples of at least 50 ms; the export is also timed by TVM's
``time_evaluator``. Sizes: bytes on disk of what each needs. Accuracy: top-1 on ``data`` (x, y)
for the export and for onnxruntime on the float model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from ..machine import available_cores
from ..run.timing import time_callable
from ..export import runtime as RT
from ..export.model import materialize
from ..quantize import load_model
from ..export.model import evaluate
from ..export.relax_kernels import relax_import
from ..targets import get_target

SIDES = ("tvmq", "onnxruntime", "relax")


def bench_model(export_dir, model_path=None, data=None, threads: int | None = None, repeat: int = 20,
                seed: int = 0, timeout_s: float = 1800.0) -> dict:
    """Latency, size and accuracy of each side, each measured in its own process, as one dict."""
    threads = threads or available_cores()
    res = {"export": str(export_dir), "threads": threads, "repeat": repeat}
    for side in SIDES:
        res.update(_child(side, export_dir, model_path, data, threads, repeat, seed, timeout_s))
    return res


def _child(side, export_dir, model_path, data, threads, repeat, seed, timeout_s) -> dict:
    args = [sys.executable, "-m", "tvmq.bench.model", side, str(export_dir), f"--threads={threads}",
            f"--repeat={repeat}", f"--seed={seed}"] + ([f"--model={model_path}"] if model_path else []) + \
        ([f"--data={data}"] if data else [])
    env = dict(os.environ, TVM_NUM_THREADS=str(threads))  # the child's runtime threads; this process's stay as they are
    try:
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise TvmqError(f"bench --export: the {side} side ran past {timeout_s:g} s") from None
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        raise TvmqError(f"bench --export: the {side} side failed: {tail[:300]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _ms(fn, repeat: int) -> float:
    return float(np.median(time_callable(fn, repeat=repeat, min_repeat_ms=50.0))) * 1e3


def _open(export_dir, model_path):

    ex = RT.open_export(export_dir)
    mr = RT.ModelRunner(ex)
    if model_path is None:
        src = Path(export_dir) / "source.onnx"
        model_path = str(src) if src.is_file() else mr.info["source"]["path"]
    return RT, ex, mr, model_path, materialize(load_model(model_path), None)


def side_tvmq(export_dir, model_path, data, repeat, seed) -> dict:

    RT, ex, mr, model_path, _ = _open(export_dir, model_path)
    x = RT.random_input(mr.info, seed)
    xt = ex.tensor(x)
    files = ex.manifest["files"]
    out = {"model": str(model_path), "quantize": mr.info["quantize"]["method"], "bits": mr.info["quantize"]["bits"],
           "input_shape": list(x.shape), "target": ex.manifest["target"]["name"],
           "tvmq_ms": _ms(lambda: mr.vm["main"](xt, *mr.params).numpy(), repeat),
           "tvmq_evaluator_ms": float(np.median(mr.latency(x, repeat))) * 1e3,
           "tvmq_bytes": sum(f["bytes"] for f in files.values()), "tvmq_lib_bytes": files["lib"]["bytes"],
           "tvmq_weights_bytes": files.get("weights", {}).get("bytes", 0)}
    if data:
        acc = evaluate(mr, data, model_path)
        out.update(top1_tvmq=acc["exported"], top1_onnx_float=acc["onnx"], eval_samples=acc["n"])
    ex.close()
    return out


def _ort_session(model, threads: int):
    import onnxruntime as ort  # the peer: imported only in its own process

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess, sess.get_inputs()[0].name


def side_onnxruntime(export_dir, model_path, threads, repeat, seed) -> dict:
    RT, ex, mr, model_path, model = _open(export_dir, model_path)
    x = RT.random_input(mr.info, seed)
    ex.close()
    sess, name = _ort_session(model, threads)
    return {"onnxruntime_ms": _ms(lambda: sess.run(None, {name: x}), repeat),
            "onnx_bytes": Path(model_path).stat().st_size}


def side_relax(export_dir, model_path, threads, repeat, seed) -> dict:
    import tvm


    RT, ex, mr, model_path, model = _open(export_dir, model_path)
    x = RT.random_input(mr.info, seed)
    target = get_target(ex.manifest["target"]["name"])
    ex.close()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        mod = relax_import(model, {next(i.name for i in model.graph.input): list(x.shape)})
        path = Path(tmp) / "relax_untuned.so"
        tvm.compile(mod, target=target.tvm_target()).export_library(str(path))
        out = {"relax_untuned_compile_s": round(time.time() - t0, 1), "relax_untuned_bytes": path.stat().st_size}
        vm = tvm.runtime.vm.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu(0))
        xt = tvm.runtime.tensor(x, tvm.cpu(0))
        y = vm["main"](xt).numpy()
        out["relax_untuned_ms"] = _ms(lambda: vm["main"](xt).numpy(), max(3, repeat // 4))
    sess, name = _ort_session(model, threads)
    out["relax_untuned_vs_onnx_max_abs"] = float(np.abs(y - sess.run(None, {name: x})[0]).max())
    return out


def table(r: dict) -> str:
    q = r["quantize"] + ("" if r["bits"] is None else f" {r['bits']}-bit")
    rows = [("tvmq export (" + q + ")", r["tvmq_ms"], r["tvmq_bytes"], r.get("top1_tvmq")),
            ("onnxruntime (float)", r["onnxruntime_ms"], r["onnx_bytes"], r.get("top1_onnx_float")),
            ("TVM Relax untuned (float)", r["relax_untuned_ms"], r["relax_untuned_bytes"], r.get("top1_onnx_float")
             if r.get("top1_onnx_float") is not None and r["relax_untuned_vs_onnx_max_abs"] < 1e-3 else None)]
    out = [f"model {r['model']}, input {r['input_shape']}, {r['threads']} threads, median of {r['repeat']}, "
           "each side in a process of its own",
           "| implementation | latency ms | vs onnxruntime | size on disk (bytes) | top-1 |", "|---|---|---|---|---|"]
    for name, ms, size, acc in rows:
        out.append(f"| {name} | {ms:.3f} | {r['onnxruntime_ms'] / ms:.2f}x | {size:,} | "
                   f"{'' if acc is None else f'{acc:.4f}'} |")
    out.append(f"(tvmq time_evaluator: {r['tvmq_evaluator_ms']:.3f} ms; lib.so {r['tvmq_lib_bytes']:,} B + "
               f"weights.npz {r['tvmq_weights_bytes']:,} B)")
    return "\n".join(out)


def main(argv=None) -> int:
    """One side, in its own process: prints its results as JSON on the last line."""
    p = argparse.ArgumentParser(prog="python -m tvmq.bench.model")
    p.add_argument("side", choices=SIDES)
    p.add_argument("dir")
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.side == "tvmq":
        r = side_tvmq(a.dir, a.model, a.data, a.repeat, a.seed)
    elif a.side == "onnxruntime":
        r = side_onnxruntime(a.dir, a.model, a.threads, a.repeat, a.seed)
    else:
        r = side_relax(a.dir, a.model, a.threads, a.repeat, a.seed)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
