"""Quantize the Conv and Gemm/MatMul weights of an ONNX model; write, reload and evaluate it.

The quantized model keeps its graph: each weight tensor (an initializer or
a Constant node) is replaced by its dequantized float values, so any ONNX
runtime measures the accuracy the compressed weights give. The compressed
form itself (indices + codebooks, or integers + scales) goes to an ``.npz``
of plain arrays with a JSON manifest.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from . import fixed, kmeans, metrics, store, uniform
from .bnfold import fold_batchnorms
from .common import check_weights

METHODS = ("kmeans", "uniform", "fixed")
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


@dataclass
class QuantSpec:
    """How to quantize every layer; ``bits`` is W for fixed point."""

    method: str
    bits: int
    per_channel: bool = False
    init: str = "linear"
    symmetric: bool = True
    scale: str = "minmax"
    percentile: float = 99.9
    frac: int | None = None
    rounding: str = "nearest"
    seed: int = 0

    def check(self) -> "QuantSpec":
        """Refuse a bad combination with a one-line :class:`TvmqError`, before any work."""
        if self.method not in METHODS:
            raise TvmqError(f"--method must be one of {list(METHODS)}, got {self.method!r}")
        if self.method == "kmeans":
            kmeans.check_bits(self.bits)
            if self.init not in kmeans.INITS:
                raise TvmqError(f"--init must be one of {list(kmeans.INITS)}, got {self.init!r}")
        elif self.method == "uniform":
            uniform.check_bits(self.bits)
            if self.scale not in uniform.SCALES:
                raise TvmqError(f"--scale must be one of {list(uniform.SCALES)}, got {self.scale!r}")
            if not 50 < self.percentile <= 100:
                raise TvmqError(f"--percentile must be in (50, 100], got {self.percentile}")
        else:
            fixed.check_format(self.bits, self.frac)
            if self.per_channel:
                raise TvmqError("--per-channel does not apply to --method fixed (one (W,F) format per layer)")
            if self.rounding not in fixed.ROUNDINGS:
                raise TvmqError(f"--rounding must be one of {list(fixed.ROUNDINGS)}, got {self.rounding!r}")
        return self

    def label(self) -> str:
        if self.method == "kmeans":
            return f"kmeans-{self.init}"
        if self.method == "uniform":
            return f"uniform-{'sym' if self.symmetric else 'asym'}-{self.scale}"
        return f"fixed-{self.rounding}"


@dataclass
class WeightLayer:
    """A weight tensor read by one or more Conv/Gemm/MatMul nodes."""

    name: str
    op: str
    tensor: str
    array: np.ndarray
    axis: int
    source: str  # "initializer" or "constant"
    nodes: list[str] = field(default_factory=list)
    activation: str = ""  # the data input of the first node using it


@dataclass
class LayerResult:
    layer: WeightLayer
    dequantized: np.ndarray
    arrays: dict
    meta: dict
    report: dict


@dataclass
class ModelQuant:
    """The outcome of :func:`quantize_model`."""

    model: object  # onnx.ModelProto with dequantized weights
    spec: QuantSpec
    layers: list[LayerResult]
    folded: list[str]

    def total(self) -> dict:
        """Whole-model row: errors over all weights together, sizes summed."""
        ref = np.concatenate([r.layer.array.ravel() for r in self.layers])
        deq = np.concatenate([r.dequantized.ravel() for r in self.layers])
        rep = metrics.tensor_report(ref, deq)
        uks = [r.report["unique_kernels"] for r in self.layers if r.report["unique_kernels"]]
        rep["unique_kernels"] = {k: sum(u[k] for u in uks) for k in ("unique", "total")} if uks else None
        if uks:
            rep["unique_kernels"]["max_repeat"] = max(u["max_repeat"] for u in uks)
        for k in ("bytes_before", "bytes_formula", "bytes_packed"):
            rep[k] = sum(r.report[k] for r in self.layers)
        rep["ratio_formula"] = rep["bytes_before"] / rep["bytes_formula"]
        rep["ratio_packed"] = rep["bytes_before"] / rep["bytes_packed"]
        rep["weights"] = int(ref.size)
        return rep


# -- reading ---------------------------------------------------------------
def load_model(path):
    """Read an ONNX model; a missing or non-ONNX file is a :class:`TvmqError`."""
    import onnx  # lazy: onnx is heavy and stays out of start-up

    p = Path(path)
    if not p.is_file():
        raise TvmqError(f"MODEL: no such file {str(path)!r}")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf raises DecodeError and friends
        raise TvmqError(f"MODEL: {str(path)!r} is not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise TvmqError(f"MODEL: {str(path)!r} is not an ONNX model (no graph nodes)")
    return model


def _constants(graph) -> dict:
    """Tensor name -> (TensorProto, source) for initializers and Constant nodes."""
    out = {t.name: (t, "initializer") for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = (a.t, "constant")
    return out


def _channel_axis(node, ndim: int) -> int:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul":
        return ndim - 1
    return 0


def weight_layers(model) -> list[WeightLayer]:
    """Float weight tensors (input 1) of Conv, Gemm and MatMul nodes, once per tensor."""
    from onnx import numpy_helper  # lazy: onnx is heavy and stays out of start-up

    consts = _constants(model.graph)
    layers: dict[str, WeightLayer] = {}
    for n in model.graph.node:
        if n.op_type not in WEIGHT_OPS or len(n.input) < 2 or n.input[1] not in consts:
            continue
        tname = n.input[1]
        label = n.name or n.output[0]
        if tname in layers:
            layers[tname].nodes.append(label)
            continue
        tensor, source = consts[tname]
        arr = numpy_helper.to_array(tensor)
        if arr.size and not np.issubdtype(arr.dtype, np.floating):
            continue  # already integer: not ours to quantize
        layers[tname] = WeightLayer(label, n.op_type, tname, arr, _channel_axis(n, max(arr.ndim, 1)), source, [label],
                                    n.input[0])
    return list(layers.values())


# -- quantizing ------------------------------------------------------------
def quantize_tensor(w: np.ndarray, axis: int | None, spec: QuantSpec, seed: int):
    """One tensor under ``spec``: a Codebook, UniformQuant or FixedQuant."""
    if spec.method == "kmeans":
        return kmeans.kmeans_quantize(w, spec.bits, spec.init, axis, seed)
    if spec.method == "uniform":
        return uniform.uniform_quantize(w, spec.bits, spec.symmetric, axis, spec.scale, spec.percentile)
    return fixed.fixed_quantize(w, spec.bits, spec.frac, spec.rounding, seed)


def quantize_layer(layer: WeightLayer, spec: QuantSpec, index: int) -> LayerResult:
    w = check_weights(layer.array, f"layer {layer.name!r} weight {layer.tensor!r}")
    seed = int(np.random.SeedSequence([spec.seed, index]).generate_state(1)[0])
    qt = quantize_tensor(w, layer.axis if spec.per_channel else None, spec, seed)
    deq = qt.dequantize()
    arrays, meta = store.encode(qt)
    rep = metrics.tensor_report(layer.array, deq)
    packed = store.stored_bytes(arrays)
    rep.update(metrics.size_report(w.size, layer.array.dtype.itemsize, qt.bits, qt.n_params, packed))
    rep["saturated"] = int(qt.saturated) if hasattr(qt, "saturated") else 0
    if spec.method == "fixed":
        rep["frac"] = qt.frac
    if spec.method == "uniform" and spec.scale == "pow2" and not spec.per_channel:
        rep["pow2_curve"] = uniform.pow2_curve(w.reshape(1, -1), qt.grid)  # seed 002's V-curve, for the JSON
    return LayerResult(layer, deq, arrays, meta, rep)


def quantize_model(model, spec: QuantSpec, fold_bn: bool = True, source: str = "MODEL") -> ModelQuant:
    """Quantize every Conv/Gemm/MatMul weight of ``model`` (a copy; the argument is untouched)."""
    import onnx  # lazy: onnx is heavy and stays out of start-up

    spec.check()
    m = onnx.ModelProto()
    m.CopyFrom(model)
    folded = fold_batchnorms(m) if fold_bn else []
    layers = weight_layers(m)
    if not layers:
        raise TvmqError(f"{source}: no Conv, Gemm or MatMul layer with constant float weights")
    results = [quantize_layer(layer, spec, i) for i, layer in enumerate(layers)]
    _replace_weights(m, results)
    return ModelQuant(m, spec, results, folded)


def _replace_weights(model, results: list[LayerResult]):
    from onnx import numpy_helper  # lazy: onnx is heavy and stays out of start-up

    byname = {r.layer.tensor: r for r in results}

    def tensor(r, name):  # back in the original float type (float16 stays float16)
        return numpy_helper.from_array(r.dequantized.astype(r.layer.array.dtype), name)

    for t in model.graph.initializer:
        if t.name in byname:
            t.CopyFrom(tensor(byname[t.name], t.name))
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] in byname:
            for a in n.attribute:
                if a.name == "value":
                    a.t.CopyFrom(tensor(byname[n.output[0]], a.t.name))


# -- writing ---------------------------------------------------------------
def manifest(mq: ModelQuant, model_path: str | None = None) -> dict:
    return dict(
        format="tvmq-quantized-weights/1", model=model_path, spec=mq.spec.__dict__, folded_batchnorm=mq.folded,
        layers=[dict(key=f"{i:03d}", name=r.layer.name, op=r.layer.op, tensor=r.layer.tensor, nodes=r.layer.nodes,
                     source=r.layer.source, dtype=str(r.layer.array.dtype), **r.meta)
                for i, r in enumerate(mq.layers)],
    )


def write_outputs(mq: ModelQuant, out_dir, model_path: str | None = None) -> Path:
    """Write ``weights.npz``, ``manifest.json`` and ``dequantized.onnx`` into ``out_dir`` all or nothing.

    Files go to a hidden sibling directory first and are renamed into place
    at the end, so an interrupted run never leaves a complete-looking folder.
    An existing ``out_dir`` is replaced only if it is empty or a previous tvmq output.
    """
    import onnx  # lazy: onnx is heavy and stays out of start-up

    out = Path(out_dir)
    check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = {f"{i:03d}.{k}": a for i, r in enumerate(mq.layers) for k, a in r.arrays.items()}
        np.savez(tmp / "weights.npz", **arrays)
        (tmp / "manifest.json").write_text(json.dumps(manifest(mq, model_path), indent=1, default=_jsonable))
        onnx.save(mq.model, str(tmp / "dequantized.onnx"))
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_out_dir(out: Path):
    """Refuse an ``--out`` that exists and is not an empty folder or a previous tvmq output."""
    if not out.exists():
        return
    if not out.is_dir():
        raise TvmqError(f"--out: {str(out)!r} exists and is not a directory")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise TvmqError(f"--out: {str(out)!r} is a non-empty directory that is not a tvmq quantize output")


def _swap_in(tmp: Path, out: Path):
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_outputs(out_dir) -> dict[str, np.ndarray]:
    """Tensor name -> float32 weights decoded from a written ``weights.npz`` + ``manifest.json``."""
    out = Path(out_dir)
    man = json.loads((out / "manifest.json").read_text())
    with np.load(out / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    res = {}
    for layer in man["layers"]:
        mine = {k.split(".", 1)[1]: a for k, a in arrays.items() if k.split(".", 1)[0] == layer["key"]}
        res[layer["tensor"]] = store.decode(mine, layer)
    return res


def write_json(path, obj):
    """Write JSON through a temporary file so a reader never sees half a report."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    os.replace(tmp, p)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
