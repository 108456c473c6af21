"""End-to-end comparison of an exported model with its peers, on this machine.

    python -m tvmq.export.bench DIR [--model FLOAT.onnx] [--data DATA.npz] [--threads 2] [--repeat 20]

Three implementations of the same network on the same input, all with ``--threads`` threads:

* ``tvmq export``: the exported library (tvmq kernels in a Relax VM), weights from weights.npz;
* ``onnxruntime``: the float ONNX model (``intra_op_num_threads`` = threads, all graph optimizations);
* ``relax untuned``: the float ONNX model through TVM's ONNX frontend and ``tvm.compile`` with the
  default pipeline (no tuning, no schedules: what TVM gives without tvmq), weights as constants.

Latency: each sample runs the model from Python (input already on the device, output copied
back) in a loop of at least 50 ms; the median of ``--repeat`` samples. The exported model is
also timed by TVM's ``time_evaluator`` (no Python in the loop). Sizes: bytes on disk of what
each needs (lib.so + weights.npz; the .onnx file; the untuned .so with its weights).
Accuracy: top-1 on ``--data`` (x, y) for the export and for onnxruntime on the float model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _loop_ms(fn, repeat: int, min_ms: float = 50.0) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    k = max(1, int(min_ms * 1e-3 / one))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        samples.append((time.perf_counter() - t0) / k)
    return float(np.median(samples)) * 1e3


def relax_untuned(model, shape: list, target, out_dir: Path):
    """(path of the untuned .so, compile seconds) for the float model, weights as constants."""
    import tvm

    from .model import relax_import

    name = next(i.name for i in model.graph.input)
    t0 = time.time()
    mod = relax_import(model, {name: shape})
    ex = tvm.compile(mod, target=target.tvm_target())
    path = out_dir / "relax_untuned.so"
    ex.export_library(str(path))
    return path, time.time() - t0


def bench(export_dir, model_path=None, data=None, threads: int = 2, repeat: int = 20, seed: int = 0) -> dict:
    os.environ["TVM_NUM_THREADS"] = str(threads)
    import onnxruntime as ort
    import tvm

    from ..quantize import load_model
    from ..targets import get_target
    from . import runtime as RT
    from .model import evaluate, materialize

    ex = RT.open_export(export_dir)
    mr = RT.ModelRunner(ex)
    info = mr.info
    if model_path is None:
        src = Path(export_dir) / "source.onnx"
        model_path = str(src) if src.is_file() else info["source"]["path"]
    model = materialize(load_model(model_path), None)
    x = RT.random_input(info, seed)
    res = {"model": str(model_path), "export": str(export_dir), "threads": threads, "repeat": repeat,
           "quantize": info["quantize"]["method"], "bits": info["quantize"]["bits"],
           "input_shape": list(x.shape), "target": ex.manifest["target"]["name"]}

    # tvmq export
    xt = ex.tensor(x)
    res["tvmq_ms"] = _loop_ms(lambda: mr.vm["main"](xt, *mr.params).numpy(), repeat)
    res["tvmq_evaluator_ms"] = float(np.median(mr.latency(x, repeat))) * 1e3
    files = ex.manifest["files"]
    res["tvmq_bytes"] = sum(f["bytes"] for f in files.values())
    res["tvmq_lib_bytes"] = files["lib"]["bytes"]
    res["tvmq_weights_bytes"] = files.get("weights", {}).get("bytes", 0)

    # onnxruntime, float model
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    res["onnxruntime_ms"] = _loop_ms(lambda: sess.run(None, {iname: x}), repeat)
    res["onnx_bytes"] = Path(model_path).stat().st_size

    # TVM Relax, untuned
    with tempfile.TemporaryDirectory() as tmp:
        so_path, cs = relax_untuned(model, list(x.shape), get_target(ex.manifest["target"]["name"]), Path(tmp))
        res["relax_untuned_compile_s"] = round(cs, 1)
        res["relax_untuned_bytes"] = so_path.stat().st_size
        vm = tvm.runtime.vm.VirtualMachine(tvm.runtime.load_module(str(so_path)), tvm.cpu(0))
        xt0 = tvm.runtime.tensor(x, tvm.cpu(0))
        y_untuned = vm["main"](xt0).numpy()
        res["relax_untuned_ms"] = _loop_ms(lambda: vm["main"](xt0).numpy(), max(3, repeat // 4), 20.0)
    y_ort = sess.run(None, {iname: x})[0]
    res["relax_untuned_vs_onnx_max_abs"] = float(np.abs(y_untuned - y_ort).max())
    if data:
        acc = evaluate(mr, data, model_path)
        res["top1_tvmq"] = acc["exported"]
        res["top1_onnx_float"] = acc["onnx"]
        res["eval_samples"] = acc["n"]
    ex.close()
    return res


def table(r: dict) -> str:
    q = r["quantize"] + ("" if r["bits"] is None else f" {r['bits']}-bit")
    rows = [
        ("tvmq export (" + q + ")", r["tvmq_ms"], r["tvmq_bytes"], r.get("top1_tvmq")),
        ("onnxruntime (float)", r["onnxruntime_ms"], r["onnx_bytes"], r.get("top1_onnx_float")),
        ("TVM Relax untuned (float)", r["relax_untuned_ms"], r["relax_untuned_bytes"], r.get("top1_onnx_float")
         if r.get("top1_onnx_float") is not None and r["relax_untuned_vs_onnx_max_abs"] < 1e-3 else None),
    ]
    out = [f"model {r['model']}, input {r['input_shape']}, {r['threads']} threads, median of {r['repeat']}",
           "| implementation | latency ms | size on disk (bytes) | top-1 |", "|---|---|---|---|"]
    for name, ms, size, acc in rows:
        out.append(f"| {name} | {ms:.3f} | {size:,} | {'' if acc is None else f'{acc:.4f}'} |")
    out.append(f"(tvmq time_evaluator: {r['tvmq_evaluator_ms']:.3f} ms; lib.so {r['tvmq_lib_bytes']:,} B + "
               f"weights.npz {r['tvmq_weights_bytes']:,} B)")
    return "\n".join(out)


def main(argv=None) -> int:
    from ..errors import TvmqError

    p = argparse.ArgumentParser(prog="python -m tvmq.export.bench", description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--model", help="the float ONNX model (default: DIR/source.onnx, else the exported path)")
    p.add_argument("--data", help=".npz with x, y for top-1 accuracy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--json")
    a = p.parse_args(argv)
    try:
        r = bench(a.dir, a.model, a.data, a.threads, a.repeat)
    except TvmqError as e:
        print(f"tvmq bench: error: {e}", file=sys.stderr)
        return 2
    print(table(r))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
