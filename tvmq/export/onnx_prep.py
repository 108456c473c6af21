"""ONNX side of a model export: what is supported, weights made concrete, BN folded, dense as 1x1 conv,
quantized conv weights, int8 activation calibration. numpy + onnx (+ onnxruntime to calibrate) only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import TvmqError
from ..variants import QUANTIZATIONS
from ..quantize import metrics, uniform_quantize
from ..quantize import kmeans_quantize
from ..quantize.evaluate import run as ort_run
from . import bn_stats
from .onnx_rewrites import (dropouts_as_identity, fold_constant_weights, gemm_to_conv, initializers,
                            split_concat_convs, sums_as_adds)
from ..quantize import fold_batchnorms, load_model
from ..ops.codebook import check_codebook


SUPPORTED_OPS = frozenset({
    "Conv", "Gemm", "MatMul", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Concat", "BatchNormalization", "Add", "Sum", "Mul", "Sub", "Div",
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Softmax", "Dropout", "LRN", "Identity",
    "Constant", "ConstantOfShape", "Pad", "ReduceMean",
})
KMEANS_SAMPLE = 1 << 20  # larger layers fit their codebook on this many sampled weights


@dataclass
class ModelOptions:
    quantize: str = "none"
    bits: int | None = None
    batch: int = 1
    calib: str | None = None
    calib_samples: int = 64
    random_weights: int | None = None
    seed: int = 0
    fuse: bool = True  # bias/ReLU in the kernels' epilogues, NCHWc kept between kernels (relax_kernels)
    schedule_glue: bool = True  # the ops between kernels parallelized and vectorized (glue)

    def check(self) -> "ModelOptions":
        if self.quantize not in QUANTIZATIONS:
            raise TvmqError(f"--quantize must be one of {list(QUANTIZATIONS)}, got {self.quantize!r}")
        q = QUANTIZATIONS[self.quantize]
        if q.default_bits is not None:
            self.bits = q.default_bits if self.bits is None else self.bits

            check_codebook(self.bits, None, False)
        elif self.quantize == "int8":
            if self.bits not in (None, 8):
                raise TvmqError(f"--quantize int8 stores 8-bit weights; --bits {self.bits} does not apply")
            self.bits = 8
        elif self.bits is not None:
            raise TvmqError("--bits applies to --quantize kmeans and kmeans_int8 (index bits)")
        if self.batch < 1:
            raise TvmqError(f"--batch must be >= 1, got {self.batch}")
        if self.calib_samples < 1:
            raise TvmqError(f"--calib-samples must be >= 1, got {self.calib_samples}")
        return self


def node_label(node, index: int) -> str:
    return f"{node.name!r}" if node.name else f"#{index} (output {node.output[0]!r})"


def check_supported(model, source: str = "MODEL"):
    """TvmqError naming the first operator (and its node) that tvmq does not export."""
    for i, n in enumerate(model.graph.node):
        if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS:
            dom = f" (domain {n.domain!r})" if n.domain not in ("", "ai.onnx") else ""
            raise TvmqError(f"{source}: unsupported ONNX operator {n.op_type!r}{dom} at node {node_label(n, i)}; "
                            f"tvmq export supports {sorted(SUPPORTED_OPS)}")


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
    inputs; with ``random_seed``, every weight, bias and BN scale and shift gets seeded random values
    (He-normal weights) so that two implementations cannot agree by accident, and every BN's running
    statistics are its activations' on seeded random inputs (:mod:`tvmq.export.bn_stats`)."""
    import onnx  # lazy: heavy (onnx)
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = initializers(g)
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
    inits = initializers(g)
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
    names = set(initializers(g))
    keep = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(keep)
    if m.ir_version < 4:
        m.ir_version = 4
    del helper  # (imported for symmetry with the other rewrites)
    if random_seed is not None:  # random BN statistics normalize nothing: fit them to the activations
        _, dims = data_input(m)
        bn_stats.fit(m, rng.uniform(-1.0, 1.0, [dims[0] or 1, *dims[1:]]).astype(np.float32))
    return m


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
    from onnx import numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    inits = initializers(g)
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

    for i, L in enumerate(layers):
        seed = int(np.random.SeedSequence([opts.seed, i]).generate_state(1)[0])
        if opts.quantize == "none":
            L.deq = L.w
            L.quant = {"weight": L.w}
        elif opts.quantize == "kmeans":
            idx, book = _kmeans_layer(L, opts.bits, seed)
            L.quant = {"indices": idx, "codebook": book}
            L.deq = book[idx]
        elif opts.quantize == "kmeans_int8":
            idx, book = _kmeans_layer(L, opts.bits, seed)
            # the centroids as int8 with one scale per layer (the kernel's table is int8); the
            # table is padded to the kernel's 64 entries (one vpermb)
            s = float(np.max(np.abs(book))) / 127.0 or 1.0
            table = np.zeros(max(book.size, 64), np.int8)
            table[: book.size] = np.clip(np.round(book / s), -127, 127).astype(np.int8)
            L.quant = {"indices": idx, "codebook": table, "w_scale": np.full(L.w.shape[0], s, np.float32)}
            L.deq = (table[idx].astype(np.float32) * np.float32(s)).astype(np.float32)
            L.report["codebook_scale"] = s
        else:
            uq = uniform_quantize(L.w, 8, True, 0, "minmax")
            q = uq.q.astype(np.int8)
            s = np.asarray(uq.scale, np.float32).reshape(-1)
            L.quant = {"q": q, "w_scale": s}
            L.deq = (q.astype(np.float32) * s.reshape(-1, 1, 1, 1)).astype(np.float32)
        if opts.quantize != "none":
            L.report["nrmse"] = float(metrics.nrmse(L.w, L.deq))


def _kmeans_layer(L: ConvLayer, bits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 indices shaped like the weight, float codebook of 2**bits entries) of one layer."""

    book = np.zeros(2 ** bits, np.float32)
    if L.w.size <= KMEANS_SAMPLE:
        cb = kmeans_quantize(L.w, bits, "linear", None, seed)
        book[: cb.codebook.size] = cb.codebook.astype(np.float32).ravel()
        return cb.indices.astype(np.uint8), book
    # fit the codebook on a seeded sample, then give every weight its nearest entry
    sample = np.random.default_rng(seed).choice(L.w.ravel(), KMEANS_SAMPLE, replace=False)
    cb = kmeans_quantize(sample, bits, "linear", None, seed)
    used = np.sort(cb.codebook.astype(np.float32).ravel())
    book[: used.size] = used
    L.report["codebook_fit"] = f"k-means on a {KMEANS_SAMPLE}-weight sample, nearest entry for all"
    return np.searchsorted((used[1:] + used[:-1]) / 2, L.w).astype(np.uint8), book


def with_weights(model, layers: list[ConvLayer], use_deq: bool = True):
    """A copy of the prepared model with each conv weight replaced by its dequantized values."""
    import onnx  # lazy: heavy (onnx)
    from onnx import numpy_helper  # lazy: heavy (onnx)

    m = onnx.ModelProto()
    m.CopyFrom(model)
    by = {L.weight: L for L in layers}
    for t in m.graph.initializer:
        if t.name in by and use_deq:
            t.CopyFrom(numpy_helper.from_array(by[t.name].deq.astype(np.float32), t.name))
    return m


def data_input(model):
    inits = set(initializers(model.graph))
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


def pooled_source(model, name: str) -> str:
    """The tensor that ``name`` is a max pooling of (through a chain of MaxPools), else ``name``: a conv
    after a max pool takes the activation quantization of the pool's input, as onnxruntime's quantizer
    does, so the kernel before the pool can write uint8 for it (max commutes with quantization)."""
    made_by = {o: n for n in model.graph.node for o in n.output}
    n = made_by.get(name)
    while n is not None and n.op_type == "MaxPool" and len(n.output) == 1:
        name = n.input[0]
        n = made_by.get(name)
    return name


def calibrate(model_deq, layers: list[ConvLayer], x: np.ndarray):
    """Per-layer uint8 activation scale and zero point from the min/max of each conv's input (of the
    max pool's input where a max pool makes it: ``pooled_source``)."""

    source = {L.data_input: pooled_source(model_deq, L.data_input) for L in layers}
    names = list(dict.fromkeys(source.values()))
    import onnx  # lazy: heavy (onnx)
    from onnx import TensorProto, helper  # lazy: heavy (onnx)

    m = onnx.ModelProto()
    m.CopyFrom(model_deq)
    outs = {o.name for o in m.graph.output}
    dname = data_input(m)[0]
    for t in names:
        if t not in outs and t != dname:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    wanted = [t for t in names if t != dname]
    vals = dict(zip(wanted, ort_run(m, x, wanted, what="calibration"))) if wanted else {}
    vals[dname] = x
    for L in layers:
        v = vals[source[L.data_input]]
        lo, hi = min(0.0, float(v.min())), max(0.0, float(v.max()))
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zp = int(np.clip(round(-lo / scale), 0, 255))
        L.act = {"scale": float(np.float32(scale)), "zero_point": zp, "min": lo, "max": hi}


def prepare(model_path, opts: ModelOptions):
    """(source float model, prepared float model, conv layers, input name, input dims)."""

    src = load_model(model_path)
    check_supported(src)
    src = materialize(src, opts.random_weights)
    name, dims = data_input(src)
    import onnx  # lazy: heavy (onnx)

    prep = onnx.ModelProto()
    prep.CopyFrom(src)
    folded = fold_batchnorms(prep)
    fold_constant_weights(prep)
    gemms = gemm_to_conv(prep)
    dropouts_as_identity(prep)
    sums_as_adds(prep)
    # float activations: a concat read by one narrow conv is not copied (int8 concats uint8 blocks instead)
    split = [] if QUANTIZATIONS[opts.quantize].integer_activations else split_concat_convs(prep)
    layers = conv_layers(prep)
    if not layers:
        raise TvmqError(f"MODEL: {model_path}: no Conv or Gemm layer with constant float weights")
    return src, prep, layers, name, dims, {"folded_batchnorm": folded, "gemm_as_conv": gemms,
                                           **({"concat_conv_split": split} if split else {})}


def as_inputs(model, layers):
    """The prepared model with conv weights and biases as graph inputs named w000, w000_b, ..."""
    import onnx  # lazy: heavy (onnx)
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

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


def float_source_sha(model) -> str:
    """sha256 of a (materialized) float model: ties an export to the ONNX model it was built from."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
