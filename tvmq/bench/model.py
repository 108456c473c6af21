"""A whole exported model against its peers on this machine: ``tvmq bench --export DIR``.

Three implementations of the same network on the same seeded input, each timed in a process of
its own (TVM's thread pool keeps spinning after a run and would take a core from the next side):

* ``tvmq``: the exported library (tvmq kernels in a Relax VM), weights from weights.npz;
* ``onnxruntime``: the float ONNX model (``intra_op_num_threads`` = threads, all graph optimizations);
* ``onnxruntime_int8``: the same float model quantized by onnxruntime's own static quantizer
  (``quantize_static``: QDQ, per-channel int8 weights, uint8 activations, MinMax calibration, after
  ``quant_pre_process``), calibrated on the same inputs the tvmq int8 export calibrated on
  (``calibration_inputs``), run like the float model;
* ``relax``: the float model through TVM's ONNX frontend and ``tvm.compile`` with the default
  pipeline (no tuning: what TVM gives without tvmq), weights as constants.

Latency: ``run.timing.time_callable`` over a call from Python (input on the device, output copied
back), median of ``repeat`` samples of at least 50 ms; the export is also timed by TVM's
``time_evaluator``. Sizes: bytes on disk of what each needs. Memory: how far each side's peak resident
memory rose while it loaded the model and ran it (``bench.memory``). Accuracy: top-1 on ``data``
(x, y) for the export and for onnxruntime on the float model.
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

from ..errors import TvmqError, one_line
from ..machine import available_cores
from ..peers.onnxruntime_conv import u8s8_saturates
from ..run.timing import time_callable
from ..export import runtime as RT
from ..export.calibration import calibration_inputs as _calibration_set
from ..export.model import materialize
from ..quantize import load_dataset, load_model, top1
from ..quantize.evaluate import fixed_batch
from ..export.model import evaluate
from ..export.relax_kernels import relax_import
from ..targets import get_target
from .breakdown import profile_export
from .memory import peak_of

SIDES = ("tvmq", "onnxruntime", "onnxruntime_int8", "relax")


def bench_model(export_dir, model_path=None, data=None, threads: int | None = None, repeat: int = 20,
                seed: int = 0, timeout_s: float = 1800.0, sides=SIDES, calib=None) -> dict:
    """Latency, size and accuracy of each side, each measured in its own process, as one dict.

    ``sides``: which of ``SIDES`` to run (the export and float onnxruntime always run: the table's
    reference). ``calib``: the .npz the int8 export calibrated on, where the path in its manifest
    (relative to where it was exported) does not resolve from here."""
    threads = threads or available_cores()
    bad = [s for s in sides if s not in SIDES]
    if bad:
        raise TvmqError(f"bench --export: unknown side(s) {bad}; valid: {list(SIDES)}")
    sides = [s for s in SIDES if s in ("tvmq", "onnxruntime") or s in sides]
    res = {"export": str(export_dir), "threads": threads, "repeat": repeat, "sides": list(sides)}
    for side in sides:
        res.update(_child(side, export_dir, model_path, data, threads, repeat, seed, timeout_s, calib))
    return res


def breakdown(export_dir, threads: int | None = None, repeat: int = 20, seed: int = 0,
              timeout_s: float = 1800.0) -> dict:
    """Each tvmq kernel's and glue operator's share of the export's time (``bench.breakdown``), measured
    in a process of its own like the sides."""
    threads = threads or available_cores()
    return _child("breakdown", export_dir, None, None, threads, repeat, seed, timeout_s)


def _child(side, export_dir, model_path, data, threads, repeat, seed, timeout_s, calib=None) -> dict:
    args = [sys.executable, "-m", "tvmq.bench.model", side, str(export_dir), f"--threads={threads}",
            f"--repeat={repeat}", f"--seed={seed}"] + ([f"--model={model_path}"] if model_path else []) + \
        ([f"--data={data}"] if data else []) + ([f"--calib={calib}"] if calib else [])
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


def _source(export_dir, mr, model_path):
    """The ONNX model an export was made from (``model_path`` where given)."""
    if model_path is None:
        src = Path(export_dir) / "source.onnx"
        model_path = str(src) if src.is_file() else mr.info["source"]["path"]
    return model_path


def _open(export_dir, model_path):

    ex = RT.open_export(export_dir)
    mr = RT.ModelRunner(ex)
    model_path = _source(export_dir, mr, model_path)
    return RT, ex, mr, model_path, materialize(load_model(model_path), None)


def side_tvmq(export_dir, model_path, data, repeat, seed, threads: int) -> dict:
    ex = RT.open_export(export_dir)
    mr = RT.ModelRunner(ex)
    x = RT.random_input(mr.info, seed)
    model_path = _source(export_dir, mr, model_path)
    files = ex.manifest["files"]
    out = {"model": str(model_path), "quantize": mr.info["quantize"]["method"], "bits": mr.info["quantize"]["bits"],
           "input_shape": list(x.shape), "target": ex.manifest["target"]["name"],
           "tvmq_ms": _ms(lambda: mr.run(x), repeat),  # numpy in, numpy out: as onnxruntime's sess.run
           "tvmq_evaluator_ms": float(np.median(mr.latency(x, repeat))) * 1e3,
           "tvmq_bytes": sum(f["bytes"] for f in files.values()), "tvmq_lib_bytes": files["lib"]["bytes"],
           "tvmq_weights_bytes": files.get("weights", {}).get("bytes", 0),
           "tvmq_mem_bytes": peak_of("tvmq", export_dir, x.shape, threads)}
    if data:
        acc = evaluate(mr, data, model_path)
        out.update(top1_tvmq=acc["exported"], top1_onnx_float=acc["onnx"], eval_samples=acc["n"])
    ex.close()
    return out


def _ort_session(model, threads: int):
    """An onnxruntime session of ``model`` (a ModelProto, or the path of an ONNX file) and its input's name."""
    import onnxruntime as ort  # the peer: imported only in its own process

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    src = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return sess, sess.get_inputs()[0].name


def side_onnxruntime(export_dir, model_path, threads, repeat, seed) -> dict:
    RT, ex, mr, model_path, model = _open(export_dir, model_path)
    x = RT.random_input(mr.info, seed)
    ex.close()
    import onnx  # lazy: heavy (onnx)

    with tempfile.TemporaryDirectory() as tmp:  # the model as timed (materialized weights), for its memory
        onnx.save(model, str(Path(tmp) / "float.onnx"))
        mem = peak_of("onnx", Path(tmp) / "float.onnx", x.shape, threads)
    sess, name = _ort_session(model, threads)
    return {"onnxruntime_ms": _ms(lambda: sess.run(None, {name: x}), repeat),
            "onnx_bytes": Path(model_path).stat().st_size, "onnxruntime_mem_bytes": mem}


def calibration_inputs(info: dict, model, calib=None) -> tuple[np.ndarray, dict]:
    """The inputs the tvmq export calibrated its uint8 activations on, and where they came from.

    The same rule as ``export.model.export_model``: the first ``samples`` of the ``--calib`` .npz
    (``calib`` overrides the path the manifest recorded), else ``samples`` seeded uniform inputs over
    the input range (``default_rng(seed)``, the export's ``ModelOptions.seed``, 0 unless set). An export
    that did not calibrate (float, kmeans) gets what ``--quantize int8`` with its flags would have used."""
    c = info["quantize"].get("calibration") or {}
    path = calib or c.get("file")
    if path and not Path(path).is_file():
        raise TvmqError(f"the export calibrated on {path!r}, which is not a file from here; pass its path "
                        f"with --calib")
    return _calibration_set(path, int(c.get("samples", 64)), int(c.get("seed", 0)), info["input"]["shape"], model,
                            c.get("random_range", info["input"].get("range", [-1.0, 1.0])))


def ort_quantize_int8(model, x_calib: np.ndarray, out_path) -> dict:
    """``model`` (float ONNX) quantized by onnxruntime's static quantizer into ``out_path``: QDQ format,
    per-channel symmetric int8 weights, uint8 activations (onnxruntime's advice for x86 with VNNI;
    on x86 without an int8 dot product, ``reduce_range``: 7-bit weights, as it advises there),
    MinMax ranges from ``x_calib`` fed at the model's own batch size. ``quant_pre_process`` (shape
    inference, graph optimization) first, as onnxruntime recommends; skipped with a note if it fails.
    A model below opset 13 is converted to 13 first (per-channel DequantizeLinear needs ``axis``)."""
    import onnx  # lazy: heavy (onnx)
    import onnxruntime as ort  # lazy: heavy (onnxruntime)
    # lazy: heavy (onnxruntime)
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    name = next(i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    b = fixed_batch(model) or 16  # the model's own batch where it fixes one; min/max merge exactly
    chunks = []
    for i in range(0, len(x_calib), b):
        c = x_calib[i:i + b]
        if len(c) < b:  # a fixed batch: pad with the last sample (as the export's calibration does)
            c = np.concatenate([c, np.repeat(c[-1:], b - len(c), axis=0)])
        chunks.append(np.ascontiguousarray(c, np.float32))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(chunks)

        def get_next(self):
            c = next(self.it, None)
            return None if c is None else {name: c}

    ort.set_default_logger_severity(3)  # no warning per unused initializer of the onnx light models
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    converted = None
    if opset < 13:  # per-channel QDQ needs DequantizeLinear's axis (opset 13); the light models are opset 9
        model = onnx.version_converter.convert_version(model, 13)
        converted = f"converted from opset {opset} to 13 first"
    out_path = Path(out_path)
    src = out_path.with_name("float.onnx")
    onnx.save(model, str(src))
    pre, note = out_path.with_name("float.pre.onnx"), None
    try:
        quant_pre_process(str(src), str(pre))
    except Exception as e:  # noqa: BLE001
        pre, note = src, f"quant_pre_process failed ({one_line(e)[:120]}); quantized without it"
    reduce_range = u8s8_saturates()
    t0 = time.time()
    quantize_static(str(pre), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    # (not CalibMaxIntermediateOutputs: onnxruntime 1.32 drops each full group unmeasured; so its
    # memory holds every intermediate tensor of every calibration sample: large models need GBs)
    qm = onnx.load(str(out_path))
    ops = {}
    for n in qm.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    note = "; ".join(x for x in (converted, note) if x) or None
    return {"quantize_s": round(time.time() - t0, 2), "preprocessed": pre != src, "note": note,
            "qdq_nodes": {k: v for k, v in ops.items() if k in ("QuantizeLinear", "DequantizeLinear")},
            "calibration_runs": len(chunks), "reduce_range": reduce_range}


def side_onnxruntime_int8(export_dir, model_path, data, threads, repeat, seed, calib=None) -> dict:
    import onnx  # lazy: heavy (onnx)

    RT, ex, mr, model_path, model = _open(export_dir, model_path)
    x = RT.random_input(mr.info, seed)
    info = mr.info
    ex.close()
    xc, where = calibration_inputs(info, model, calib)
    with tempfile.TemporaryDirectory() as tmp:
        qpath = Path(tmp) / "int8.onnx"
        q = ort_quantize_int8(model, xc, qpath)
        qmodel = onnx.load(str(qpath))
        size = qpath.stat().st_size
        mem = peak_of("onnx", qpath, x.shape, threads)
    sess, name = _ort_session(qmodel, threads)
    fsess, _ = _ort_session(model, threads)
    y, yf = sess.run(None, {name: x})[0], fsess.run(None, {name: x})[0]
    out = {"onnxruntime_int8_ms": _ms(lambda: sess.run(None, {name: x}), repeat),
           "onnxruntime_int8_bytes": size, "onnxruntime_int8_mem_bytes": mem,
           "onnxruntime_int8_quantize_s": q["quantize_s"],
           "onnxruntime_int8_preprocessed": q["preprocessed"], "onnxruntime_int8_note": q["note"],
           "onnxruntime_int8_qdq_nodes": q["qdq_nodes"], "onnxruntime_int8_reduce_range": q["reduce_range"],
           "onnxruntime_int8_calibration": where,
           # max|int8 - float| / max|float| on the timed input: the quantization's own error
           "onnxruntime_int8_vs_float_rel": float(np.abs(y - yf).max() / max(float(np.abs(yf).max()), 1e-12))}
    if data:
        dx, dy = load_dataset(data, model)
        out["top1_onnxruntime_int8"] = top1(qmodel, dx, dy)
    return out


def side_relax(export_dir, model_path, threads, repeat, seed) -> dict:
    import tvm  # lazy: heavy (TVM)


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
        out["relax_untuned_mem_bytes"] = peak_of("relax", path, x.shape, threads)
        vm = tvm.runtime.vm.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu(0))
        xt, main = tvm.runtime.tensor(x, tvm.cpu(0)), vm["main"]
        y = main(xt).numpy()
        out["relax_untuned_ms"] = _ms(lambda: main(xt.copyfrom(x)).numpy(), max(3, repeat // 4))
    sess, name = _ort_session(model, threads)
    out["relax_untuned_vs_onnx_max_abs"] = float(np.abs(y - sess.run(None, {name: x})[0]).max())
    return out


def table(r: dict) -> str:
    q = "float" if r["quantize"] == "none" else r["quantize"] + ("" if r["bits"] is None else f" {r['bits']}-bit")
    rows = [("tvmq export (" + q + ")", r["tvmq_ms"], r["tvmq_bytes"], r.get("tvmq_mem_bytes"), r.get("top1_tvmq")),
            ("onnxruntime (float)", r["onnxruntime_ms"], r["onnx_bytes"], r.get("onnxruntime_mem_bytes"),
             r.get("top1_onnx_float")),
            ("onnxruntime int8 (its own static quantization, QDQ)", r.get("onnxruntime_int8_ms"),
             r.get("onnxruntime_int8_bytes"), r.get("onnxruntime_int8_mem_bytes"), r.get("top1_onnxruntime_int8")),
            ("TVM Relax untuned (float)", r.get("relax_untuned_ms"), r.get("relax_untuned_bytes"),
             r.get("relax_untuned_mem_bytes"), r.get("top1_onnx_float")
             if r.get("top1_onnx_float") is not None and r.get("relax_untuned_vs_onnx_max_abs", 1.0) < 1e-3 else None)]
    out = [f"model {r['model']}, input {r['input_shape']}, {r['threads']} threads, median of {r['repeat']}, "
           "each side in a process of its own",
           "| implementation | latency ms | vs onnxruntime | size on disk (bytes) | peak memory MB | top-1 |",
           "|---|---|---|---|---|---|"]
    for name, ms, size, mem, acc in rows:
        if ms is None:  # a side not run (bench_model(sides=...))
            continue
        out.append(f"| {name} | {ms:.3f} | {r['onnxruntime_ms'] / ms:.2f}x | {size:,} | "
                   f"{'' if mem is None else f'{mem / 2**20:.1f}'} | {'' if acc is None else f'{acc:.4f}'} |")
    out.append(f"(tvmq time_evaluator: {r['tvmq_evaluator_ms']:.3f} ms; lib.so {r['tvmq_lib_bytes']:,} B + "
               f"weights.npz {r['tvmq_weights_bytes']:,} B; peak memory: how far each side's resident memory "
               "rose while it loaded the model and ran it, in a process of its own)")
    if r.get("onnxruntime_int8_ms") is not None:
        c = r["onnxruntime_int8_calibration"]
        src = f"the first {c['samples']} samples of {c['file']}" if c.get("file") else \
            f"{c['samples']} seeded uniform inputs in {c['random_range']}"
        out.append(f"(onnxruntime int8: calibrated on {src}, the export's calibration inputs; output within "
                   f"{r['onnxruntime_int8_vs_float_rel']:.2e} of float onnxruntime (max abs diff / max abs)"
                   + (f"; {r['onnxruntime_int8_note']}" if r.get("onnxruntime_int8_note") else "") + ")")
    return "\n".join(out)


def main(argv=None) -> int:
    """One side, in its own process: prints its results as JSON on the last line."""
    p = argparse.ArgumentParser(prog="python -m tvmq.bench.model")
    p.add_argument("side", choices=SIDES + ("breakdown",))
    p.add_argument("dir")
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calib")
    a = p.parse_args(argv)
    if a.side == "tvmq":
        r = side_tvmq(a.dir, a.model, a.data, a.repeat, a.seed, a.threads)
    elif a.side == "onnxruntime":
        r = side_onnxruntime(a.dir, a.model, a.threads, a.repeat, a.seed)
    elif a.side == "breakdown":

        r = profile_export(a.dir, runs=max(20, a.repeat), seed=a.seed)
    elif a.side == "onnxruntime_int8":
        r = side_onnxruntime_int8(a.dir, a.model, a.data, a.threads, a.repeat, a.seed, a.calib)
    else:
        r = side_relax(a.dir, a.model, a.threads, a.repeat, a.seed)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
