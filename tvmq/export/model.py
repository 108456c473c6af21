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
   decoded in the graph at run time (codebook lookup / int8 * scale), and is listed as such;
5. compile the Relax module (bias, ReLU, pooling, LRN, concat... through TVM's legalization)
   into one ``lib.so`` (cross-linked for edge); ``weights.npz`` holds every function input
   after the data, in call order; ``manifest.json`` says all of it.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TvmqError
from . import LIB_NAME, WEIGHTS_NAME

# Operators tvmq exports (through TVM's ONNX frontend, or replaced by tvmq kernels); exercised by
# the shipped digits CNN and the onnx package's light AlexNet, SqueezeNet, Inception-v1 and ResNet-50.
SUPPORTED_OPS = frozenset({
    "Conv", "Gemm", "MatMul", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Concat", "BatchNormalization", "Add", "Sum", "Mul", "Sub", "Div",
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Softmax", "Dropout", "LRN", "Identity",
    "Constant", "ConstantOfShape", "Pad",
})
QUANTIZE = ("none", "kmeans", "int8")
KMEANS_SAMPLE = 1 << 20  # larger layers fit their codebook on this many sampled weights
VARIANT = {"none": "float", "kmeans": "codebook", "int8": "int8"}
# Largest |exported - onnxruntime| / max|onnxruntime| allowed against the model with the same
# (dequantized) weights: float arithmetic only for float and codebook; int8 adds activation rounding.
TOLERANCE = {"none": 1e-4, "kmeans": 1e-4, "int8": 5e-2}


@dataclass
class ModelOptions:
    quantize: str = "none"
    bits: int | None = None
    batch: int = 1
    calib: str | None = None
    calib_samples: int = 64
    random_weights: int | None = None
    seed: int = 0

    def check(self) -> "ModelOptions":
        if self.quantize not in QUANTIZE:
            raise TvmqError(f"--quantize must be one of {list(QUANTIZE)}, got {self.quantize!r}")
        if self.quantize == "kmeans":
            self.bits = 5 if self.bits is None else self.bits
            from ..ops.codebook import check_codebook

            check_codebook(self.bits, None, False)
        elif self.quantize == "int8":
            if self.bits not in (None, 8):
                raise TvmqError(f"--quantize int8 stores 8-bit weights; --bits {self.bits} does not apply")
            self.bits = 8
        elif self.bits is not None:
            raise TvmqError("--bits applies to --quantize kmeans (index bits)")
        if self.batch < 1:
            raise TvmqError(f"--batch must be >= 1, got {self.batch}")
        if self.calib_samples < 1:
            raise TvmqError(f"--calib-samples must be >= 1, got {self.calib_samples}")
        return self


# -- ONNX preparation ------------------------------------------------------------------------
def node_label(node, index: int) -> str:
    return f"{node.name!r}" if node.name else f"#{index} (output {node.output[0]!r})"


def check_supported(model, source: str = "MODEL"):
    """TvmqError naming the first operator (and its node) that tvmq does not export."""
    for i, n in enumerate(model.graph.node):
        if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS:
            dom = f" (domain {n.domain!r})" if n.domain not in ("", "ai.onnx") else ""
            raise TvmqError(f"{source}: unsupported ONNX operator {n.op_type!r}{dom} at node {node_label(n, i)}; "
                            f"tvmq export supports {sorted(SUPPORTED_OPS)}")


def _inits(graph) -> dict:
    return {t.name: t for t in graph.initializer}


def _consumers(graph) -> dict:
    uses: dict[str, list] = {}
    for n in graph.node:
        for k, name in enumerate(n.input):
            uses.setdefault(name, []).append((n, k))
    return uses


def _random_like(shape, role: str, rng, fan_in: int):
    if role == "weight":
        return rng.normal(0.0, np.sqrt(2.0 / max(1, fan_in)), shape)
    if role in ("bn_scale", "bn_var"):
        return rng.uniform(0.5, 1.5, shape)
    if role in ("bias", "bn_bias", "bn_mean"):
        return rng.uniform(-0.1, 0.1, shape)
    return None


def _role(uses) -> tuple[str, int]:
    """What a float tensor is to its first consumer: weight (with fan-in), bias, BN statistic, other."""
    for n, k in uses:
        if n.op_type in ("Conv", "Gemm", "MatMul") and k == 1:
            return "weight", -1
        if n.op_type in ("Conv", "Gemm") and k == 2:
            return "bias", 0
        if n.op_type == "BatchNormalization" and k >= 1:
            return ("bn_scale", "bn_bias", "bn_mean", "bn_var")[k - 1], 0
    return "other", 0


def materialize(model, random_seed: int | None = None):
    """A copy whose ``ConstantOfShape`` constants are initializers, with only data tensors as graph
    inputs; with ``random_seed``, every weight, bias and BN statistic gets seeded random values
    (He-normal weights) so that two implementations cannot agree by accident."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = _inits(g)
    uses = _consumers(g)
    rng = np.random.default_rng(random_seed if random_seed is not None else 0)
    for i, n in enumerate(list(g.node)):
        if n.op_type != "ConstantOfShape":
            continue
        if n.input[0] not in inits:
            raise TvmqError(f"MODEL: ConstantOfShape node {node_label(n, i)} has a computed shape; tvmq export "
                            f"needs constant weights")
        shape = [int(d) for d in numpy_helper.to_array(inits[n.input[0]])]
        val = next((numpy_helper.to_array(a.t) for a in n.attribute if a.name == "value"), np.zeros(1, np.float32))
        arr = np.full(shape, val.ravel()[0], dtype=val.dtype)
        g.node.remove(n)
        g.initializer.append(numpy_helper.from_array(arr, n.output[0]))
    inits = _inits(g)
    if random_seed is not None:
        for name, t in list(inits.items()):
            arr = numpy_helper.to_array(t)
            if not np.issubdtype(arr.dtype, np.floating) or not arr.size:
                continue
            role, _ = _role(uses.get(name, []))
            fan_in = int(np.prod(arr.shape[1:])) if arr.ndim > 1 else arr.size
            if role == "weight":
                gemm = [n for n, k in uses[name] if n.op_type == "Gemm"]
                if gemm and arr.ndim == 2:
                    tb = next((a.i for a in gemm[0].attribute if a.name == "transB"), 0)
                    fan_in = arr.shape[1] if tb else arr.shape[0]
            new = _random_like(arr.shape, role, rng, fan_in)
            if new is not None:
                t.CopyFrom(numpy_helper.from_array(new.astype(arr.dtype), name))
    names = set(_inits(g))
    keep = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(keep)
    if m.ir_version < 4:
        m.ir_version = 4
    del helper  # (imported for symmetry with the other rewrites)
    return m


def gemm_to_conv(model) -> list[str]:
    """Rewrite each Gemm with a constant 2-D weight (alpha = beta = 1, transA = 0, bias constant 1-D)
    as Reshape -> 1x1 Conv -> Flatten, in place; returns the rewritten node names."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = _inits(g)
    done = []
    for i, n in enumerate(list(g.node)):
        if n.op_type != "Gemm" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if at.get("alpha", 1.0) != 1.0 or at.get("transA", 0) or (len(n.input) > 2 and at.get("beta", 1.0) != 1.0):
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        if w.ndim != 2 or not np.issubdtype(w.dtype, np.floating):
            continue
        w = w if at.get("transB", 0) else w.T
        bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
        if bias is not None:
            if bias not in inits:
                continue
            b = numpy_helper.to_array(inits[bias]).reshape(-1)
            if b.shape != (w.shape[0],):
                continue
        label = n.name or n.output[0]
        base = re.sub(r"\W", "_", label)
        wname, shname, mid, conv_out = f"{base}.gemm_w", f"{base}.gemm_shape", f"{base}.gemm_in", f"{base}.gemm_out"
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.reshape(*w.shape, 1, 1)), wname))
        g.initializer.append(numpy_helper.from_array(np.array([0, -1, 1, 1], np.int64), shname))
        ins = [mid, wname]
        if bias is not None:
            bname = f"{base}.gemm_b"
            g.initializer.append(numpy_helper.from_array(b.astype(w.dtype), bname))
            ins.append(bname)
        new = [helper.make_node("Reshape", [n.input[0], shname], [mid], name=f"{label}.reshape"),
               helper.make_node("Conv", ins, [conv_out], name=label, kernel_shape=[1, 1]),
               helper.make_node("Flatten", [conv_out], [n.output[0]], name=f"{label}.flatten", axis=1)]
        idx = list(g.node).index(n)
        g.node.remove(n)
        for k, nn in enumerate(new):
            g.node.insert(idx + k, nn)
        done.append(label)
    used = {x for nd in g.node for x in nd.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    return done


@dataclass
class ConvLayer:
    """One Conv weight tensor of the prepared graph (shared weights count once)."""

    node: str
    weight: str  # initializer name in the prepared graph
    bias: str | None
    w: np.ndarray  # float32 OIHW
    data_input: str
    safe: str  # the name it has as a Relax function input
    deq: np.ndarray | None = None
    quant: dict = field(default_factory=dict)  # arrays of the quantized form (OIHW order)
    act: dict | None = None  # int8: activation scale / zero point
    report: dict = field(default_factory=dict)


def conv_layers(model) -> list[ConvLayer]:
    from onnx import numpy_helper

    g = model.graph
    inits = _inits(g)
    out: dict[str, ConvLayer] = {}
    for i, n in enumerate(g.node):
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        if n.input[1] in out:
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        if w.ndim != 4 or not np.issubdtype(w.dtype, np.floating):
            continue
        bias = n.input[2] if len(n.input) > 2 and n.input[2] in inits else None
        out[n.input[1]] = ConvLayer(n.name or n.output[0], n.input[1], bias, w.astype(np.float32), n.input[0],
                                    f"w{len(out):03d}")
    return list(out.values())


def quantize_layers(layers: list[ConvLayer], opts: ModelOptions):
    from ..quantize import kmeans_quantize, metrics, uniform_quantize

    for i, L in enumerate(layers):
        seed = int(np.random.SeedSequence([opts.seed, i]).generate_state(1)[0])
        if opts.quantize == "none":
            L.deq = L.w
            L.quant = {"weight": L.w}
        elif opts.quantize == "kmeans":
            entries = 2 ** opts.bits
            book = np.zeros(entries, np.float32)
            if L.w.size <= KMEANS_SAMPLE:
                cb = kmeans_quantize(L.w, opts.bits, "linear", None, seed)
                book[: cb.codebook.size] = cb.codebook.astype(np.float32).ravel()
                idx = cb.indices.astype(np.uint8)
            else:  # fit the codebook on a seeded sample, then give every weight its nearest entry
                sample = np.random.default_rng(seed).choice(L.w.ravel(), KMEANS_SAMPLE, replace=False)
                cb = kmeans_quantize(sample, opts.bits, "linear", None, seed)
                used = np.sort(cb.codebook.astype(np.float32).ravel())
                book[: used.size] = used
                idx = np.searchsorted((used[1:] + used[:-1]) / 2, L.w).astype(np.uint8)
                L.report["codebook_fit"] = f"k-means on a {KMEANS_SAMPLE}-weight sample, nearest entry for all"
            L.quant = {"indices": idx, "codebook": book}
            L.deq = book[idx]
        else:
            uq = uniform_quantize(L.w, 8, True, 0, "minmax")
            q = uq.q.astype(np.int8)
            s = np.asarray(uq.scale, np.float32).reshape(-1)
            L.quant = {"q": q, "w_scale": s}
            L.deq = (q.astype(np.float32) * s.reshape(-1, 1, 1, 1)).astype(np.float32)
        if opts.quantize != "none":
            L.report["nrmse"] = float(metrics.nrmse(L.w, L.deq))


def with_weights(model, layers: list[ConvLayer], use_deq: bool = True):
    """A copy of the prepared model with each conv weight replaced by its dequantized values."""
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    by = {L.weight: L for L in layers}
    for t in m.graph.initializer:
        if t.name in by and use_deq:
            t.CopyFrom(numpy_helper.from_array(by[t.name].deq.astype(np.float32), t.name))
    return m


def data_input(model):
    inits = set(_inits(model.graph))
    ins = [i for i in model.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise TvmqError(f"MODEL: {len(ins)} data inputs ({[i.name for i in ins]}); tvmq export needs exactly one")
    i = ins[0]
    tt = i.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
    if tt.elem_type != 1:
        raise TvmqError(f"MODEL: input {i.name!r} is not float32 (ONNX type {tt.elem_type})")
    if any(d is None for d in dims[1:]) or not dims:
        raise TvmqError(f"MODEL: input {i.name!r} has a dynamic shape {dims} beyond the batch; tvmq exports static shapes")
    return i.name, dims


def calibrate(model_deq, layers: list[ConvLayer], x: np.ndarray):
    """Per-layer uint8 activation scale and zero point from the min/max of each conv's input."""
    from ..quantize.evaluate import run as ort_run

    names = list(dict.fromkeys(L.data_input for L in layers))
    import onnx
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.CopyFrom(model_deq)
    outs = {o.name for o in m.graph.output}
    dname = data_input(m)[0]
    for t in names:
        if t not in outs and t != dname:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    wanted = [t for t in names if t != dname]
    vals = dict(zip(wanted, ort_run(m, x, wanted))) if wanted else {}
    vals[dname] = x
    for L in layers:
        v = vals[L.data_input]
        lo, hi = min(0.0, float(v.min())), max(0.0, float(v.max()))
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zp = int(np.clip(round(-lo / scale), 0, 255))
        L.act = {"scale": float(np.float32(scale)), "zero_point": zp, "min": lo, "max": hi}


# -- Relax -------------------------------------------------------------------------------------
def relax_import(model, shapes: dict):
    from tvm.relax.frontend.onnx import from_onnx

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_onnx(model, shape_dict=shapes, keep_params_in_input=False)
    except Exception as e:  # noqa: BLE001  (the frontend raises anything)
        msg = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        raise TvmqError(f"TVM's ONNX frontend cannot import the model: {msg[-1][:300] if msg else type(e).__name__}") \
            from None


def _to_layout(bb, x, layout: str, ib: int):
    from tvm import relax

    R = relax.op
    n, c, h, w = [int(v) for v in x.ty.shape]
    if layout == "nchw":
        return x
    if layout == "nhwc":
        return bb.emit(R.permute_dims(x, [0, 2, 3, 1]))
    if h == 1 and w == 1:
        return bb.emit(R.reshape(x, [n, c // ib, 1, 1, ib]))
    y = bb.emit(R.reshape(x, [n, c // ib, ib, h, w]))
    return bb.emit(R.permute_dims(y, [0, 1, 3, 4, 2]))


def _from_layout(bb, y, layout: str, c: int):
    from tvm import relax

    R = relax.op
    if layout == "nchw":
        return y
    if layout == "nhwc":
        return bb.emit(R.permute_dims(y, [0, 3, 1, 2]))
    n, co, h, w, cb = [int(v) for v in y.ty.shape]
    if h == 1 and w == 1:
        return bb.emit(R.reshape(y, [n, c, 1, 1]))
    z = bb.emit(R.permute_dims(y, [0, 1, 4, 2, 3]))
    return bb.emit(R.reshape(z, [n, c, h, w]))


class _Plan:
    """Decides, per conv2d call, kernel or fallback; collects kernels, new inputs and their arrays."""

    def __init__(self, layers, opts, target, records):
        self.by_safe = {L.safe: L for L in layers}
        self.opts = opts
        self.target = target
        self.records = records
        self.kernels: dict[tuple, tuple] = {}  # key -> (name, gv, entry)
        self.funcs: dict[str, object] = {}
        self.entries: list[dict] = []
        self.inputs: list[tuple] = []  # (Var, array, role, layer)
        self.layer_rows: list[dict] = []
        self.dry = False  # only collect the kernels' workloads (model_workloads)
        self.workloads: dict[str, object] = {}

    def new_input(self, name, arr, role, layer):
        from tvm import relax

        v = relax.Var(name, relax.TensorType(list(arr.shape), str(arr.dtype)))
        self.inputs.append((v, np.ascontiguousarray(arr), role, layer))
        return v

    def _variant(self):
        variant = VARIANT[self.opts.quantize]
        params = {}
        if variant == "codebook":
            variant = {4: "codebook4", 5: "codebook"}.get(self.opts.bits, "codebook")
            params = {"bits": self.opts.bits}
        return variant, params

    def _fits(self, wl) -> str | None:
        """None if tvmq's search space has a schedule for ``wl``, else why not."""
        from ..task import Task

        variant, params = self._variant()
        try:
            Task.make(wl, variant, self.target, **params).space()
        except TvmqError as e:
            return str(e).split(" for {")[0]
        return None

    def _pieces(self, call, L):
        """How to run this conv2d on tvmq kernels: a list of (workload, group, c_out_padded), or (None, why).

        A grouped conv runs one kernel call per group (same kernel) on a channel slice; an output-channel
        count no schedule fits (e.g. 10 or 1000 classes) is padded to a multiple of 16 and sliced back.
        """
        from ..workload import ConvWorkload

        a = call.attrs
        n, c, h, w = [int(v) for v in call.args[0].ty.shape]
        o, cg, kh, kw = L.w.shape
        groups = int(a.groups)
        if any(int(d) != 1 for d in a.dilation):
            return None, f"dilation={[int(d) for d in a.dilation]}"
        if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW" or cg * groups != c:
            return None, "layout"
        if groups > 4:
            return None, f"groups={groups} (depthwise-like convolutions have no tvmq kernel)"
        og = o // groups
        name = re.sub(r"\W", "_", L.node)
        base = dict(n=n, c_in=cg, h=h, w=w, kh=kh, kw=kw, stride=(int(a.strides[0]), int(a.strides[1])),
                    pad=tuple(int(p) for p in a.padding))
        wl = ConvWorkload(name, c_out=og, **base)
        why = self._fits(wl)
        if why:
            padded = -(-og // 16) * 16
            wl = ConvWorkload(name, c_out=padded, **base)
            if padded == og or self._fits(wl):
                return None, why
        return wl, groups

    def kernel(self, wl, bb):
        """(op, GlobalVar, function name, entry) of the tuned kernel for ``wl`` (deduplicated)."""
        from ..task import Task
        from .layers import function_entry, scheduled_function

        variant, params = self._variant()
        task = Task.make(wl, variant, self.target, **params)
        overrides = {"epilogue": "dequant"} if variant == "int8" else None
        key = (wl.key, task.variant, repr(sorted(task.params.items())))
        if key in self.kernels:
            op, gv, name, entry = self.kernels[key]
            if wl.name not in entry["layers"]:
                entry["layers"].append(wl.name)
            return op, gv, name, entry
        op, func, cfg, rec, kw = scheduled_function(task, self.records, op_overrides=overrides)
        name = f"k{len(self.kernels):02d}_{wl.name}__{task.variant}"
        func = func.with_attr("global_symbol", name).with_attr("op_pattern", 8).with_attr("tir.is_scheduled", True)
        gv = bb.add_func(func, name)
        entry = function_entry(name, task, op, cfg, rec, kw)
        entry["layers"] = [wl.name]
        if overrides:
            entry["epilogue_override"] = overrides
        self.kernels[key] = (op, gv, name, entry)
        self.entries.append(entry)
        return op, gv, name, entry

    def rewrite(self, bb, call, L):
        from tvm import relax

        R = relax.op
        wl, groups = self._pieces(call, L)
        if self.dry:
            if wl is not None:
                self.workloads.setdefault(wl.key, wl)
            return call
        if wl is None:
            return self.fallback(bb, call, L, groups)
        try:
            op, gv, fname, entry = self.kernel(wl, bb)
        except TvmqError as e:
            return self.fallback(bb, call, L, str(e))
        x = call.args[0]
        if self.opts.quantize == "int8":
            s, zp = L.act["scale"], L.act["zero_point"]
            xs = bb.emit(R.round(R.multiply(x, relax.const(np.float32(1.0 / s)))))
            x = bb.emit(R.astype(R.clip(R.add(xs, relax.const(np.float32(zp))), 0.0, 255.0), "uint8"))
        xs = [x] if groups == 1 else [bb.emit(relax.TupleGetItem(bb.emit(R.split(x, groups, axis=1)), g))
                                      for g in range(groups)]
        o = L.w.shape[0]
        og = o // groups
        outs, pieces = [], []
        for g in range(groups):
            y, names = self._call(bb, op, gv, xs[g], L, g if groups > 1 else None, g * og, (g + 1) * og, wl.c_out)
            if wl.c_out != og:
                y = bb.emit(R.strided_slice(y, axes=[1], begin=[0], end=[og]))
            outs.append(y)
            pieces.append(dict(kernel=fname, out_channels=[g * og, (g + 1) * og], c_out_padded=wl.c_out,
                               inputs=names))
        y = outs[0] if groups == 1 else bb.emit(R.concat(outs, axis=1))
        self.layer_rows.append(dict(node=L.node, weight=L.weight, workload=wl.to_dict(), kernel=fname,
                                    schedule=entry["schedule"], layout=op.layout, groups=groups, pieces=pieces,
                                    **L.report, **({"activation": L.act} if L.act else {})))
        return y

    def _call(self, bb, op, gv, x, L, g, lo, hi, c_pad):
        """One kernel call on ``x`` (NCHW) for output channels lo:hi (padded to c_pad); returns NCHW output."""
        from tvm import relax

        from ..ops import direct as D
        from ..ops import reference as Ref

        p = op.params
        layout, ib, ob = op.layout, p["ib"], p["ob"]
        tag = L.safe if g is None else f"{L.safe}_g{g}"
        q = self.opts.quantize

        def sl(a):  # output channels lo:hi, zero-padded to c_pad (padded channels are sliced off)
            a = a[lo:hi]
            if c_pad > hi - lo:
                a = np.concatenate([a, np.zeros((c_pad - (hi - lo), *a.shape[1:]), a.dtype)])
            return a

        names = {}

        def inp(role_key, arr, role):
            v = self.new_input(f"{tag}_{role_key}", arr, role, L.node)
            names[role_key] = v.name
            return v

        xin = _to_layout(bb, x, layout, ib)
        if q == "int8":
            qw = sl(L.quant["q"])
            args = [xin, inp("q", D.to_layout_weight(qw, layout, ib, ob).astype(np.int8), "int8 weights"),
                    inp("xzp", np.array([L.act["zero_point"]], np.int32), "activation zero point"),
                    inp("wsum", qw.astype(np.int64).reshape(c_pad, -1).sum(1).astype(np.int32), "weight sums"),
                    inp("scale", sl(np.float32(L.act["scale"]) * L.quant["w_scale"]).astype(np.float32),
                        "output scales (x_scale * w_scale)")]
        elif q == "none":
            args = [xin, inp("w", D.to_layout_weight(sl(L.quant["weight"]), layout, ib, ob), "float weights")]
        else:
            idx = D.to_layout_weight(sl(L.quant["indices"]), layout, ib, ob)
            idx = Ref.pack_bits(idx, self.opts.bits) if p["packed"] else idx
            args = [xin, inp("idx", idx, f"{self.opts.bits}-bit codebook indices" + (" (packed)" if p["packed"] else "")),
                    inp("cb", L.quant["codebook"], "codebook")]
        oa = op.out_arg
        want = [a.to_dict() for a in op.args[:-1]]
        got = [{"name": w["name"], "shape": [int(v) for v in a.ty.shape], "dtype": str(a.ty.dtype)}
               for w, a in zip(want, args)]
        if got != want:
            raise TvmqError(f"internal: layer {L.node!r}: kernel arguments {got} != {want}")
        y = bb.emit(relax.call_tir(gv, relax.Tuple(args), relax.TensorType(list(oa.shape), oa.dtype)))
        return _from_layout(bb, y, layout, c_pad), names

    def fallback(self, bb, call, L, why):
        """Relax's own conv2d, its weight decoded from the stored form inside the graph (at run time)."""
        from tvm import relax

        R = relax.op
        q = self.opts.quantize
        o = L.w.shape[0]
        if q == "none":
            w = self.new_input(f"{L.safe}_w", L.quant["weight"], "float weights (Relax conv2d)", L.node)
        elif q == "kmeans":
            idx = self.new_input(f"{L.safe}_idx", L.quant["indices"], f"{self.opts.bits}-bit codebook indices, OIHW "
                                 "(Relax conv2d)", L.node)
            cb = self.new_input(f"{L.safe}_cb", L.quant["codebook"], "codebook", L.node)
            w = bb.emit(R.take(cb, R.astype(idx, "int32"), axis=0, mode="clip"))
        else:
            qv = self.new_input(f"{L.safe}_q", L.quant["q"], "int8 weights, OIHW (Relax conv2d)", L.node)
            sc = self.new_input(f"{L.safe}_wscale", L.quant["w_scale"].reshape(o, 1, 1, 1), "weight scales", L.node)
            w = bb.emit(R.multiply(R.astype(qv, "float32"), sc))
        a = call.attrs
        y = bb.emit(R.nn.conv2d(call.args[0], w, strides=a.strides, padding=a.padding, dilation=a.dilation,
                                groups=a.groups, data_layout="NCHW", kernel_layout="OIHW", out_layout="NCHW"))
        print(f"tvmq export: note: layer {L.node!r} has no tvmq kernel ({why}); it runs as Relax conv2d on weights "
              f"decoded at run time", file=sys.stderr)
        self.layer_rows.append(dict(node=L.node, weight=L.weight, kernel=None, fallback=why, **L.report))
        return y


def build_relax(mod, layers, opts, target, records, dry: bool = False):
    """Replace the conv2d calls that read a quantized weight input; returns (module, plan, kept inputs)."""
    import tvm
    from tvm import relax

    plan = _Plan(layers, opts, target, records)
    plan.dry = dry
    conv_op = tvm.ir.Op.get("relax.nn.conv2d")

    @relax.expr_functor.mutator
    class Swap(relax.PyExprMutator):
        def visit_call_(self, call):
            call = self.visit_expr_post_order(call)
            if call.op.same_as(conv_op) and isinstance(call.args[1], relax.Var) and call.args[1].name in plan.by_safe:
                return plan.rewrite(self.builder_, call, plan.by_safe[call.args[1].name])
            return call

    sw = Swap(mod)
    main = mod["main"]
    body = sw.visit_expr(main).body
    if dry:
        return None, plan, []
    swapped = {L.weight for L in layers} - {r["weight"] for r in plan.layer_rows}
    if swapped:
        raise TvmqError(f"internal: conv weight(s) {sorted(swapped)} were not found as conv2d inputs after import")
    free = {v.name for v in relax.analysis.free_vars(body)}
    data = main.params[0]
    old = [v for v in main.params[1:] if v.name in free]
    new = [v for v, *_ in plan.inputs]
    params = [data, *old, *new]
    fn = relax.Function(params, body, main.ret_ty if hasattr(main, "ret_ty") else None, is_pure=True,
                        attrs=main.attrs).with_attr("num_input", len(params))
    if "params" in fn.attrs:
        fn = fn.without_attr("params")
    out = sw.builder_.get()
    out["main"] = fn
    return out, plan, old


# -- export -------------------------------------------------------------------------------------
def prepare(model_path, opts: ModelOptions):
    """(source float model, prepared float model, conv layers, input name, input dims)."""
    from ..quantize import fold_batchnorms, load_model

    src = load_model(model_path)
    check_supported(src)
    src = materialize(src, opts.random_weights)
    name, dims = data_input(src)
    import onnx

    prep = onnx.ModelProto()
    prep.CopyFrom(src)
    folded = fold_batchnorms(prep)
    gemms = gemm_to_conv(prep)
    layers = conv_layers(prep)
    if not layers:
        raise TvmqError(f"MODEL: {model_path}: no Conv or Gemm layer with constant float weights")
    return src, prep, layers, name, dims, {"folded_batchnorm": folded, "gemm_as_conv": gemms}


def _as_inputs(model, layers):
    """The prepared model with conv weights and biases as graph inputs named w000, w000_b, ..."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    rename, shapes = {}, {}
    for L in layers:
        rename[L.weight] = L.safe
        if L.bias:
            rename[L.bias] = f"{L.safe}_b"
    for t in list(g.initializer):
        if t.name in rename:
            arr = numpy_helper.to_array(t)
            shapes[rename[t.name]] = (list(arr.shape), arr)
            g.initializer.remove(t)
            g.input.append(helper.make_tensor_value_info(rename[t.name], 1, list(arr.shape)))
    for n in g.node:
        for k, name in enumerate(n.input):
            if name in rename:
                n.input[k] = rename[name]
    return m, shapes


def model_workloads(model_path, target, opts: ModelOptions) -> list:
    """The distinct convolution workloads the export would run on tvmq kernels (to tune them first)."""
    opts.check()
    src, prep, layers, in_name, dims, _ = prepare(model_path, opts)
    as_in, arrays = _as_inputs(prep, layers)
    mod = relax_import(as_in, {in_name: [opts.batch, *dims[1:]], **{k: v[0] for k, v in arrays.items()}})
    _, plan, _ = build_relax(mod, layers, opts, target, [], dry=True)
    return list(plan.workloads.values())


def _float_source_sha(model) -> str:
    import hashlib

    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def export_model(model_path, target, records, out_dir, opts: ModelOptions, quiet: bool = False) -> dict:
    import onnx
    import tvm

    from ..build.cross import export_lib
    from . import manifest as M
    from . import weights as W

    opts.check()
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src, prep, layers, in_name, dims, graph_info = prepare(model_path, opts)
    shape = [opts.batch, *dims[1:]]
    quantize_layers(layers, opts)
    x_range = [-1.0, 1.0]
    calib = None
    if opts.calib:
        from ..quantize import load_dataset

        cx, _ = load_dataset(opts.calib, src)
        cx = cx[: opts.calib_samples]
        x_range = [float(cx.min()), float(cx.max())]
        calib = {"file": str(opts.calib), "samples": int(len(cx))}
    if opts.quantize == "int8":
        if not opts.calib:
            cx = np.random.default_rng(opts.seed).uniform(*x_range, (opts.calib_samples, *dims[1:])).astype(np.float32)
            calib = {"file": None, "samples": opts.calib_samples, "random_range": x_range}
        calibrate(with_weights(prep, layers), layers, cx)
    as_in, arrays = _as_inputs(prep, layers)
    shapes = {in_name: shape, **{k: v[0] for k, v in arrays.items()}}
    mod = relax_import(as_in, shapes)
    mod, plan, old = build_relax(mod, layers, opts, target, records)
    try:
        ex = tvm.compile(mod, target=target.tvm_target())
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
        "source": {"path": str(model_path), "sha256": _float_source_sha(src),
                   "random_weights": opts.random_weights,
                   "saved_as": "source.onnx" if opts.random_weights is not None else None,
                   "onnx_bytes": Path(model_path).stat().st_size},
        "input": {"name": in_name, "shape": shape, "dtype": "float32", "range": x_range},
        "output": {"shape": [int(v) for v in out_si.shape], "dtype": str(out_si.dtype)},
        "params": params,
        "quantize": {"method": opts.quantize, "bits": opts.bits, "variant": VARIANT[opts.quantize],
                     "codebook": "one per layer, linear init" if opts.quantize == "kmeans" else None,
                     "int8": ("symmetric per-channel weights; uint8 activations, per-layer min/max calibration; "
                              "kernel epilogue dequantizes (int32 * x_scale * w_scale)")
                     if opts.quantize == "int8" else None,
                     "calibration": calib},
        "tolerance": {"relative": TOLERANCE[opts.quantize],
                      "against": "onnxruntime on the same model with the exported (dequantized) weights"},
        "graph": graph_info,
        "layers": plan.layer_rows,
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


# -- checking against onnxruntime ---------------------------------------------------------------
def decode_weights(man_model: dict, arrays: dict, layers: list[ConvLayer], functions: list[dict]) -> dict:
    """OIHW float weights of each conv layer, decoded from the exported arrays (what the kernels read)."""
    from ..workload import ConvWorkload

    q = man_model["quantize"]["method"]
    rows = {r["node"]: r for r in man_model["layers"]}
    fn = {f["name"]: f for f in functions}
    out = {}
    for L in layers:
        r = rows.get(L.node)
        if r is None:
            raise TvmqError(f"the exported model has no layer {L.node!r}: MODEL is not the model that was exported")
        if r.get("kernel"):
            f = fn[r["kernel"]]
            wl = ConvWorkload.from_dict(r["workload"])
            w = np.zeros(L.w.shape, np.float32)
            for piece in r["pieces"]:
                lo, hi = piece["out_channels"]
                w[lo:hi] = _decode_piece(q, f, wl, {k: arrays[v] for k, v in piece["inputs"].items()},
                                         r.get("activation"))[: hi - lo]
        else:
            if q == "none":
                w = arrays[L.safe] if L.safe in arrays else arrays[f"{L.safe}_w"]
            elif q == "kmeans":
                w = arrays[f"{L.safe}_cb"][arrays[f"{L.safe}_idx"]]
            else:
                w = arrays[f"{L.safe}_q"].astype(np.float32) * arrays[f"{L.safe}_wscale"]
        if w.shape != L.w.shape:
            raise TvmqError(f"layer {L.node!r}: exported weights are {list(w.shape)}, MODEL has {list(L.w.shape)}")
        L.deq = np.asarray(w, np.float32)
        out[L.node] = L.deq
    return out


def _decode_piece(q, f, wl, a: dict, act) -> np.ndarray:
    """OIHW weights (padded output channels included) of one kernel call, from its stored arrays."""
    from ..ops import direct as D
    from ..ops import reference as Ref

    p = f["op_params"]
    layout, ib, ob = f["make_op"]["layout"], p["ib"], p["ob"]
    if q == "none":
        return D.from_layout_weight(a["w"], layout, wl, ib, ob)
    if q == "kmeans":
        shp = D.shapes(wl, layout, ib, ob)[1]
        idx = Ref.unpack_bits(a["idx"], p["bits"], int(np.prod(shp))).reshape(shp) if p["packed"] else a["idx"]
        return D.from_layout_weight(a["cb"][idx], layout, wl, ib, ob)
    qw = D.from_layout_weight(a["q"], layout, wl, ib, ob).astype(np.float32)
    return qw * (a["scale"] / np.float32(act["scale"])).reshape(-1, 1, 1, 1)


def _rel(a: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    d = float(np.max(np.abs(a.astype(np.float64) - ref.astype(np.float64))))
    return d, d / max(float(np.max(np.abs(ref))), 1e-30)


def reference_models(mr, model_path):
    """(float source model, same-weights model) for onnxruntime, both from MODEL and the export."""
    from ..quantize import fold_batchnorms, load_model
    from . import weights as W

    info = mr.info
    src = load_model(model_path)
    check_supported(src)
    src = materialize(src, None)
    warn = None
    if _float_source_sha(src) != info["source"]["sha256"]:
        warn = (f"{model_path} is not the float model this export was built from (sha256 differs)"
                + (f"; it was exported with --random-weights: use {mr.ex.path / 'source.onnx'}"
                   if info["source"].get("random_weights") is not None else ""))
    import onnx

    prep = onnx.ModelProto()
    prep.CopyFrom(src)
    fold_batchnorms(prep)
    gemm_to_conv(prep)
    layers = conv_layers(prep)
    arrays = W.load(mr.ex.path / WEIGHTS_NAME)
    decode_weights(info, arrays, layers, mr.ex.manifest["functions"])
    return src, with_weights(prep, layers), warn


def compare_with_onnx(mr, model_path, x: np.ndarray) -> dict:
    """Exported model vs onnxruntime on the same input.

    A float export is compared with MODEL itself (tolerance 1e-4 relative). A quantized export is
    compared with MODEL carrying the export's own weights, decoded from weights.npz (so only the
    arithmetic differs; tolerance per quantization), and, for information, with the float MODEL
    (the quantization's own error). MODEL must be the float model the export was built from.
    """
    from ..quantize.evaluate import run as ort_run

    src, same, warn = reference_models(mr, model_path)
    q = mr.info["quantize"]
    y = mr.run(x)
    ref_float = ort_run(src, x, [src.graph.output[0].name], batch=len(x))[0]
    ref = ref_float if q["method"] == "none" else ort_run(same, x, [same.graph.output[0].name], batch=len(x))[0]
    if ref.shape != y.shape:
        raise TvmqError(f"onnxruntime's output is {list(ref.shape)}, the export's {list(y.shape)}")
    d, r = _rel(y, ref)
    d_float, r_float = _rel(y, ref_float)
    tol = mr.info["tolerance"]["relative"]
    ok = r <= tol and warn is None
    lines = [f"warning: {warn}"] if warn else []
    verdict = "ok" if ok else "FAIL"
    if q["method"] == "none":
        lines.append(f"vs onnxruntime on {Path(model_path).name}: max |diff| {d:.3g}, relative {r:.3g} "
                     f"(tolerance {tol:g}) -> {verdict}")
    else:
        qname = f"{q['method']} {q['bits']}-bit"
        lines.append(f"vs onnxruntime, same ({qname}) weights: max |diff| {d:.3g}, relative {r:.3g} "
                     f"(tolerance {tol:g}) -> {verdict}")
        lines.append(f"vs onnxruntime, float model: max |diff| {d_float:.3g}, relative {r_float:.3g} "
                     f"(the quantization's own error)")
    return {"ok": bool(ok), "max_abs_diff": d, "relative": r, "tolerance": tol,
            "float_max_abs_diff": d_float, "float_relative": r_float, "argmax_agree_float":
            bool((y.reshape(len(y), -1).argmax(1) == ref_float.reshape(len(y), -1).argmax(1)).all()),
            "warning": warn, "lines": lines}


def evaluate(mr, data_path, model_path=None) -> dict:
    """Top-1 of the exported model on ``data_path`` (x, y), and of MODEL under onnxruntime if given."""
    from ..quantize import load_model
    from ..quantize.evaluate import load_dataset, top1

    ref = materialize(load_model(model_path), None) if model_path else None
    if ref is None:
        import onnx

        src_path = mr.ex.path / "source.onnx"
        ref_for_shape = onnx.load(str(src_path)) if src_path.is_file() else None
    else:
        ref_for_shape = ref
    if ref_for_shape is not None:
        x, y = load_dataset(data_path, ref_for_shape)
    else:
        with np.load(data_path, allow_pickle=False) as z:
            x, y = z["x"].astype(np.float32), z["y"].astype(np.int64)
    logits = mr.run_batches(x)
    res = {"n": int(len(x)), "exported": float((logits.argmax(1) == y).mean())}
    if ref is not None:
        res["onnx"] = top1(ref, x, y)
    return res
