"""Export a whole ONNX CNN: quantized conv/dense weights, tvmq's tuned kernels, one Relax library.

Pipeline (``export_model``):

1. read the ONNX model; refuse an operator outside ``SUPPORTED_OPS`` (naming op and node);
   turn ``ConstantOfShape`` weights (the onnx package's light test models) into initializers,
   seeded random ones with ``random_weights`` (their weights are all 0.02 otherwise);
2. fold BatchNormalization into the preceding Conv; rewrite ``Gemm`` (dense) with constant
   weights as a 1x1 Conv on a ``[N, K, 1, 1]`` view, so dense layers use the same kernels;
3. quantize every Conv weight: float (``none``), one k-means codebook per layer (``kmeans``,
   ``bits``-bit indices), or symmetric per-channel int8 with uint8 activations whose ranges
   come from calibration (``int8``);
4. import with TVM's ONNX frontend (Relax) with those weights as function inputs, then replace
   each ``nn.conv2d`` by a ``call_tir`` of tvmq's kernel for that layer (best record from the
   logs, else the default schedule): data is re-laid out to the kernel's layout (NCHWc by
   default) around the call, and the kernel reads the stored arrays (codebook indices and
   codebook, int8 weights) at run time. One kernel per distinct (workload, variant). A layer
   no kernel fits (no valid schedule, groups, dilation) keeps Relax's conv2d, fed by weights
   decoded in the graph at run time (codebook lookup / int8 * scale), and is listed as such.
   Across layers (``opts.fuse``): a conv's bias add and ReLU (or Clip(0, x)) run in its kernel's
   epilogue, and NCHWc stays between kernels and through ReLU/add/max pool/concat;
5. compile the Relax module (pooling, LRN, concat... through TVM's legalization and fusion, then
   parallelized and vectorized: ``glue``) into one ``lib.so`` (cross-linked for edge);
   ``weights.npz`` holds every function input after the data, in call order; ``manifest.json``
   says all of it.

Steps 1-3 live in ``onnx_prep``, step 4 in ``relax_kernels``, the check against onnxruntime in
``compare``; this module ties them together.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from ..variants import QUANTIZATIONS
from . import LIB_NAME, WEIGHTS_NAME
from .onnx_prep import (  # noqa: F401  (the model export's public names)
    KMEANS_SAMPLE, SUPPORTED_OPS, ConvLayer, ModelOptions, as_inputs, calibrate,
    check_supported, conv_layers, data_input, float_source_sha, materialize, prepare, quantize_layers, with_weights)
from .onnx_rewrites import gemm_to_conv  # noqa: F401  (public too)
from .compare import compare_with_onnx, evaluate  # noqa: F401  (used by tvmq run and the bench)
from .calibration import calibration_inputs
from .glue import compile_model
from .grouped import task_variant
from .kernel_shapes import model_variant_params
from .relax_kernels import build_relax, relax_import
from ..build.cross import export_lib
from . import manifest as M
from . import weights as W
from ..task import Task


def model_workloads(model_path, target, opts: ModelOptions) -> list:
    """The distinct convolution workloads the export would run on tvmq kernels (to tune them first)."""
    return [wl for wl, _ in _plan_workloads(model_path, target, opts)]


def model_tasks(model_path, target, opts: ModelOptions) -> list[tuple]:
    """(Task, calls in the network) for each distinct kernel the export would build: exactly the tasks
    whose records ``tvmq export --model`` then uses."""

    found = _plan_workloads(model_path, target, opts)  # checks opts (and sets the default bits) first
    variant, params = model_variant_params(opts)
    tasks = []
    for wl, n in found:
        v, p = task_variant(wl, opts.quantize, variant, params)  # grouped layers: the grouped variant
        tasks.append((Task.make(wl, v, target, **p), n))
    return tasks


def _plan_workloads(model_path, target, opts: ModelOptions) -> list[tuple]:
    opts.check()
    src, prep, layers, in_name, dims, _ = prepare(model_path, opts)
    as_in, arrays = as_inputs(prep, layers)
    mod = relax_import(as_in, {in_name: [opts.batch, *dims[1:]], **{k: v[0] for k, v in arrays.items()}})
    _, plan, _ = build_relax(mod, layers, opts, target, [], dry=True)
    return [(wl, plan.counts.get(k, 1)) for k, wl in plan.workloads.items()]


def model_module(model_path, target, records, opts: ModelOptions) -> dict:
    """Steps 1-4 of the export: the Relax module with tvmq's kernels in place, before compiling; a dict
    of it (``mod``), its ``plan``, the graph inputs kept (``old``) and what the manifest needs."""

    opts.check()
    src, prep, layers, in_name, dims, graph_info = prepare(model_path, opts)
    shape = [opts.batch, *dims[1:]]
    quantize_layers(layers, opts)
    x_range, calib = [-1.0, 1.0], None
    if opts.calib or QUANTIZATIONS[opts.quantize].integer_activations:
        cx, calib = calibration_inputs(opts.calib, opts.calib_samples, opts.seed, shape, src)
        if opts.calib:
            x_range = [float(cx.min()), float(cx.max())]
    if QUANTIZATIONS[opts.quantize].integer_activations:
        calibrate(with_weights(prep, layers), layers, cx)
    as_in, arrays = as_inputs(prep, layers)
    shapes = {in_name: shape, **{k: v[0] for k, v in arrays.items()}}
    mod = relax_import(as_in, shapes)
    mod, plan, old = build_relax(mod, layers, opts, target, records, arrays=arrays, fuse=opts.fuse)
    return dict(src=src, layers=layers, in_name=in_name, shape=shape, x_range=x_range, calib=calib,
                graph_info=graph_info, arrays=arrays, mod=mod, plan=plan, old=old)


def export_model(model_path, target, records, out_dir, opts: ModelOptions, quiet: bool = False) -> dict:
    import onnx  # lazy: heavy (onnx)

    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = model_module(model_path, target, records, opts)
    src, layers, in_name, shape, x_range, calib, graph_info, arrays, mod, plan, old = (
        b[k] for k in ("src", "layers", "in_name", "shape", "x_range", "calib", "graph_info", "arrays", "mod", "plan",
                       "old"))
    try:
        ex, glue = compile_model(mod, target.tvm_target(), schedule=opts.schedule_glue)
    except Exception as e:  # noqa: BLE001
        msg = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        raise TvmqError(f"compiling the model for target {target.name!r} failed: {msg[-1][:300] if msg else e}") \
            from None
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        lib = export_lib(ex, str(Path(tmp) / LIB_NAME), target.cross_cc)
        Path(lib).replace(out / LIB_NAME)
    # function inputs after the data, in call order: untouched graph inputs (biases, fallback
    # float weights), then the arrays the kernels read
    params, warrays = [], {}
    roles = {L.safe: ("float weights (Relax conv2d)", L.node) for L in layers}
    roles.update({f"{L.safe}_b": ("bias", L.node) for L in layers})
    for v in old:
        arr = np.ascontiguousarray(arrays[v.name][1].astype(np.float32))
        warrays[v.name] = arr
        params.append(dict(name=v.name, shape=list(arr.shape), dtype=str(arr.dtype), role=roles[v.name][0],
                           layer=roles[v.name][1]))
    for v, arr, role, layer in plan.inputs:
        warrays[v.name] = arr
        params.append(dict(name=v.name, shape=list(arr.shape), dtype=str(arr.dtype), role=role, layer=layer))
    W.save(out / WEIGHTS_NAME, warrays)
    if opts.random_weights is not None:
        onnx.save(src, str(out / "source.onnx"))
    out_si = mod["main"].ret_ty
    model_info = {
        "source": {"path": str(model_path), "sha256": float_source_sha(src),
                   "random_weights": opts.random_weights,
                   "saved_as": "source.onnx" if opts.random_weights is not None else None,
                   "onnx_bytes": Path(model_path).stat().st_size},
        "input": {"name": in_name, "shape": shape, "dtype": "float32", "range": x_range},
        "output": {"shape": [int(v) for v in out_si.shape], "dtype": str(out_si.dtype)},
        "params": params,
        "quantize": {"method": opts.quantize, "bits": opts.bits, "variant": QUANTIZATIONS[opts.quantize].variant,
                     "codebook": {"kmeans": "one per layer, linear init",
                                  "kmeans_int8": "one per layer, linear init; centroids as int8 with one scale per "
                                                 "layer"}.get(opts.quantize),
                     "int8": (("symmetric per-channel weights" if opts.quantize == "int8" else "int8 codebook") +
                              "; uint8 activations, per-layer min/max calibration; kernel epilogue dequantizes "
                              "(int32 * x_scale * w_scale)")
                     if QUANTIZATIONS[opts.quantize].integer_activations else None,
                     "calibration": calib},
        "tolerance": {"relative": QUANTIZATIONS[opts.quantize].tolerance,
                      "against": "onnxruntime on the same model with the exported (dequantized) weights"},
        "graph": graph_info,
        "layers": plan.layer_rows,
        "glue": {**glue, "how": "legalized, fused (FuseOps/FuseTIR), then parallelized and vectorized "
                                "(MetaSchedule's RewriteParallelVectorizeUnroll, untuned)"},
        "weights_bytes": int(sum(a.nbytes for a in warrays.values())),
    }
    man = M.make("model", target, plan.entries, out, model=model_info, build_s=round(time.time() - t0, 2))
    M.write(out, man)
    if not quiet:
        k = sum(1 for r in plan.layer_rows if r.get("kernel"))
        tuned = sum(e["schedule"] == "tuned" for e in plan.entries)
        print(f"tvmq export: model {Path(model_path).name} for target {target.name}, quantize {opts.quantize}"
              f"{'' if opts.bits is None else f' ({opts.bits} bits)'}: {k}/{len(plan.layer_rows)} conv/dense "
              f"layers on {len(plan.entries)} tvmq kernel(s) ({tuned} tuned); lib.so "
              f"{(out / LIB_NAME).stat().st_size} bytes, weights.npz {(out / WEIGHTS_NAME).stat().st_size} bytes, "
              f"{time.time() - t0:.1f} s", file=sys.stderr)
    return man

