"""Relax side of a model export: import with TVM's ONNX frontend, then put tvmq's kernels in place of
``nn.conv2d`` (``call_tir`` with the data re-laid out around it), or a decoded-weight fallback."""

from __future__ import annotations

import re
import sys

import numpy as np

from ..errors import TvmqError
from ..variants import QUANTIZATIONS, model_variant
from ..task import Task
from ..workload import ConvWorkload
from .layers import function_entry, scheduled_function
from ..ops import direct as D
from ..ops import reference as Ref
from ..ops.codebook import PACKABLE


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


def model_variant_params(opts) -> tuple[str, dict]:
    """(variant, operator parameters) of a model's kernels for its ``--quantize`` and ``--bits``."""

    variant = model_variant(opts.quantize, opts.bits)
    if variant in ("codebook", "codebook4"):
        return variant, {"bits": opts.bits}
    if variant == "codebook_int8":
        return variant, {"bits": opts.bits, **({} if opts.bits in PACKABLE else {"planar": 0})}
    return variant, {}


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
        self.counts: dict[str, int] = {}  # workload key -> kernel calls in the network (groups count each)

    def new_input(self, name, arr, role, layer):
        from tvm import relax

        v = relax.Var(name, relax.TensorType(list(arr.shape), str(arr.dtype)))
        self.inputs.append((v, np.ascontiguousarray(arr), role, layer))
        return v

    def _variant(self):
        return model_variant_params(self.opts)

    def _fits(self, wl) -> str | None:
        """None if tvmq's search space has a schedule for ``wl``, else why not."""

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

        variant, params = self._variant()
        task = Task.make(wl, variant, self.target, **params)
        overrides = {"epilogue": "dequant"} if variant in ("int8", "codebook_int8") else None
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
                self.counts[wl.key] = self.counts.get(wl.key, 0) + (groups if isinstance(groups, int) and groups > 0 else 1)
            return call
        if wl is None:
            return self.fallback(bb, call, L, groups)
        try:
            op, gv, fname, entry = self.kernel(wl, bb)
        except TvmqError as e:
            return self.fallback(bb, call, L, str(e))
        x = call.args[0]
        if QUANTIZATIONS[self.opts.quantize].integer_activations:
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
            idx = Ref.pack_bits(idx, self.opts.bits, p.get("planar", 0)) if p["packed"] else idx
            cb = L.quant["codebook"]
            args = [xin, inp("idx", idx, f"{self.opts.bits}-bit codebook indices" + (" (packed)" if p["packed"] else "")),
                    inp("cb", cb, "int8 codebook" if q == "kmeans_int8" else "codebook")]
            if q == "kmeans_int8":  # padded output channels index entry 0: their sums are of entry 0 too
                wsum = cb[sl(L.quant["indices"])].astype(np.int64).reshape(c_pad, -1).sum(1).astype(np.int32)
                args += [inp("xzp", np.array([L.act["zero_point"]], np.int32), "activation zero point"),
                         inp("wsum", wsum, "weight sums"),
                         inp("scale", sl(np.float32(L.act["scale"]) * L.quant["w_scale"]).astype(np.float32),
                             "output scales (x_scale * codebook scale)")]
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
        elif q in ("kmeans", "kmeans_int8"):
            idx = self.new_input(f"{L.safe}_idx", L.quant["indices"], f"{self.opts.bits}-bit codebook indices, OIHW "
                                 "(Relax conv2d)", L.node)
            cb = self.new_input(f"{L.safe}_cb", L.quant["codebook"], "codebook", L.node)
            if q == "kmeans_int8":  # float weights from the int8 table and its scale, as in the kernel
                sc = self.new_input(f"{L.safe}_wscale", L.quant["w_scale"][:1], "codebook scale", L.node)
                cb = bb.emit(R.multiply(R.astype(cb, "float32"), sc))
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
