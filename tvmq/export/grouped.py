"""Grouped and depthwise convolutions of a model export on tvmq's grouped kernels (``tvmq.ops.grouped``).

``relax_kernels._Plan.rewrite`` calls ``grouped_call`` (a small hook) where a conv2d has no direct kernel
(today: more than 4 groups); it returns None when the grouped family does not cover the conv either, and
the conv then stays Relax's conv2d as before.

The routing on its own, without Relax: ``workload_of`` (the conv's attributes -> a grouped workload),
``grouped_kernel`` (workload -> task, operator, scheduled PrimFunc and manifest entry, from this machine's
records or the space's default) and ``layer_args`` (the layer's weights -> the kernel's input arrays).
``tvmq/export/compare.py`` decodes the weights back for the onnxruntime check.

Codebook quantizations have no grouped kernel of their own: their grouped layers run the grouped
kernel of the same activations (kmeans: float, kmeans_int8: int8) on weights decoded from the codebook
at export, so those layers store plain weights (depthwise layers hold about 2% of MobileNet-v2's and
ShuffleNet's weights; the manifest's role says "decoded").
"""

from __future__ import annotations

import re
import sys

import numpy as np

from ..errors import TvmqError
from ..ops.grouped import weight_to_layout
from .layouts import _reblock, _to_layout, divides
from .requant import channel_scales, int8_weights, out_q_array, quantize
from ..task import Task
from ..workload import ConvWorkload
from .layers import function_entry, scheduled_function
from ..build.from_log import best_record

# --quantize -> the grouped variant its kernels run (codebooks: on weights decoded at export)
GROUPED_VARIANTS = {"none": "grouped_float", "kmeans": "grouped_float", "int8": "grouped_int8",
                    "kmeans_int8": "grouped_int8"}


def workload_of(name: str, data_shape, weight_shape, groups: int, strides, padding, dilation=(1, 1)) -> ConvWorkload:
    """The grouped workload of a conv2d (NCHW data, OIHW weights, padding (top, left, bottom, right))."""
    if any(int(d) != 1 for d in dilation):
        raise TvmqError(f"dilation={[int(d) for d in dilation]} has no grouped kernel")
    n, c, h, w = (int(v) for v in data_shape)
    o, cg, kh, kw = (int(v) for v in weight_shape)
    if groups <= 1 or cg * groups != c:
        raise TvmqError(f"not a grouped convolution (groups={groups}, {c} input channels, {cg} per group)")
    return ConvWorkload(re.sub(r"\W", "_", name), n, c, h, w, o, kh, kw, (int(strides[0]), int(strides[1])),
                        tuple(int(p) for p in padding), groups)


def grouped_kernel(wl: ConvWorkload, quantize: str, target, records, bias: bool = False, relu=False,
                   quant_out: bool = False, kept_block: int | None = None):
    """(task, op, scheduled PrimFunc, manifest entry) of the tuned (or default) grouped kernel for ``wl``;
    ``bias``/``relu`` are fused into its epilogue (int8: the dequant epilogue, float out; with
    ``quant_out`` quantized again to the next layer's uint8 activations). ``kept_block``: the block its
    input is kept in, which the kernel reads as it is where it can (``data_block``)."""

    if quantize not in GROUPED_VARIANTS:
        raise TvmqError(f"--quantize {quantize} has no grouped kernel (only {sorted(GROUPED_VARIANTS)})")
    task = Task.make(wl, GROUPED_VARIANTS[quantize], target)
    overrides = {"epilogue": "dequant"} if task.variant == "grouped_int8" else {}
    if bias:
        overrides["bias"] = True
    if relu:
        overrides["relu"] = relu
    if quant_out:
        overrides["quant_out"] = True
    if kept_block:
        rec = best_record(task, records)
        cfg = task.space().default if rec is None or rec.get("tuner") == "metaschedule" else \
            task.space().complete(rec["config"])
        cb = cfg["cb"]
        if kept_block != cb and not wl.c_in % kept_block and not (wl.depthwise and kept_block % cb):
            overrides["data_block"] = kept_block
    op, func, cfg, rec, kw = scheduled_function(task, records, op_overrides=overrides or None)
    entry = function_entry("", task, op, cfg, rec, kw)
    if overrides:
        entry["epilogue_override"] = overrides
    return task, op, func, entry


def layer_args(wl: ConvWorkload, op, quant: dict, quantize: str, act: dict | None = None,
               bias: np.ndarray | None = None, out_q: np.ndarray | None = None) -> list:
    """The kernel's inputs after the data for one layer: (role key, array, role), in call order.

    ``quant``: the layer's quantized arrays in OIHW (``weight`` for ``none``; ``q`` and ``w_scale`` for
    ``int8``; ``indices`` and ``codebook`` (and ``w_scale``) for kmeans (kmeans_int8), decoded here),
    with ``act`` the activation scale and zero point; ``out_q``: the next layer's activation
    quantization (``requant.out_q_array``) where the kernel writes uint8."""
    cb = op.params["cb"]
    o = wl.c_out
    if quantize in ("none", "kmeans"):
        w = quant["weight"] if quantize == "none" else np.asarray(quant["codebook"])[quant["indices"]]
        args = [("w", weight_to_layout(np.asarray(w, np.float32), wl, cb),
                 "float weights (grouped)" if quantize == "none" else "float weights decoded from the codebook (grouped)")]
    else:
        q = int8_weights(quant, quantize)
        w_scale = channel_scales(quant["w_scale"], o)
        args = [("q", weight_to_layout(q, wl, cb),
                 "int8 weights (grouped)" if quantize == "int8" else "int8 weights decoded from the codebook (grouped)"),
                ("xzp", np.array([act["zero_point"]], np.int32), "activation zero point"),
                ("wsum", q.astype(np.int64).reshape(o, -1).sum(1).astype(np.int32), "weight sums"),
                ("scale", (np.float32(act["scale"]) * w_scale).astype(np.float32), "output scales (x_scale * w_scale)")]
    if bias is not None:
        args.append(("bias", np.asarray(bias, np.float32), "bias (fused epilogue)"))
    if out_q is not None:
        args.append(("outq", out_q, "next layer's activations (1 / scale, zero point)"))
    want = [a.to_dict() for a in op.args[1:-1]]
    got = [{"name": w["name"], "shape": list(arr.shape), "dtype": str(arr.dtype)} for w, (_, arr, _) in zip(want, args)]
    if got != want or len(args) != len(want):
        raise TvmqError(f"internal: grouped kernel arguments {got} != {want}")
    return args


def dry_workload(plan, call, L) -> ConvWorkload | None:
    """For ``tune --model``'s task extraction (the plan's dry run): the grouped workload of ``call``
    when ``grouped_call`` would put it on a grouped kernel, else None."""
    a = call.attrs
    if int(a.groups) <= 1 or plan.opts.quantize not in GROUPED_VARIANTS:
        return None
    if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW":
        return None
    try:
        return workload_of(L.node, call.args[0].ty.shape, L.w.shape, int(a.groups), a.strides, a.padding, a.dilation)
    except TvmqError:
        return None


def task_variant(wl: ConvWorkload, quantize: str, variant: str, params: dict) -> tuple[str, dict]:
    """(variant, operator parameters) of a model's kernel for ``wl``: the grouped variant for a grouped
    workload (its records are the grouped task's), the model's own otherwise."""
    if wl.groups > 1 and quantize in GROUPED_VARIANTS:
        return GROUPED_VARIANTS[quantize], {}
    return variant, params


def _plan_kernel(plan, bb, wl, q, bias: bool, relu, quant_out: bool, kept_block):
    """(op, GlobalVar, name, entry) of the grouped kernel for these settings, built once per plan."""
    key = ("grouped", wl.key, q, bias, repr(relu), quant_out, kept_block)
    if key not in plan.kernels:
        task, op, func, entry = grouped_kernel(wl, q, plan.target, plan.records, bias, relu, quant_out, kept_block)
        name = f"k{len(plan.kernels):02d}_{wl.name}__{task.variant}"
        func = func.with_attr("global_symbol", name).with_attr("op_pattern", 8).with_attr("tir.is_scheduled", True)
        gv = bb.add_func(func, name)
        entry.update(name=name, layers=[])
        plan.kernels[key] = (op, gv, name, entry)
        plan.entries.append(entry)
    return plan.kernels[key]


def grouped_call(plan, bb, call, L, epi: dict | None = None):
    """The hook of ``relax_kernels._Plan.rewrite``: ``call`` (a Relax conv2d with groups > 1) on a grouped
    tvmq kernel; returns (NCHW output, whether ``epi`` was fused), or None to leave it to the fallback."""
    from tvm import relax  # lazy: heavy (TVM)

    a = call.attrs
    q = plan.opts.quantize
    if int(a.groups) <= 1 or q not in GROUPED_VARIANTS or plan.dry:
        return None
    if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW":
        return None
    m = plan.mapped.get(call.args[0])
    if m is not None and int(a.groups) == L.w.shape[0] == int(call.args[0].ty.shape[1]) and L.w.shape[1] == 1:
        done = _mapped_depthwise(plan, bb, call, L, epi, m)
        if done is not None:
            return done
    try:
        wl = workload_of(L.node, call.args[0].ty.shape, L.w.shape, int(a.groups), a.strides, a.padding, a.dilation)
        bias = epi.get("bias") if epi else None
        relu = epi.get("relu") if epi else False
        qo = epi.get("quant_out") if epi else None
        keep, u8 = plan.input_source(call.args[0], L)
        kb = keep[1] if keep is not None else None
        op, gv, name, entry = _plan_kernel(plan, bb, wl, q, bias is not None, relu, qo is not None, kb)
        args_in = layer_args(wl, op, L.quant, q, L.act, bias, None if qo is None else out_q_array(*qo))
    except TvmqError as e:
        print(f"tvmq export: note: layer {L.node!r}: no grouped kernel ({e})", file=sys.stderr)
        return None
    if wl.name not in entry["layers"]:
        entry["layers"].append(wl.name)
    cb = op.params.get("data_block") or op.params["cb"]  # the block the kernel reads its data in
    x = call.args[0]
    laid_out = keep is not None and keep[1] == cb  # the previous kernel's NCHWc output as it is: no change
    reblock = keep is not None and not laid_out and divides(keep[1], cb)  # one transpose
    x = plan.read_input(bb, x, L, keep if laid_out or reblock else None, u8)
    xin = x if laid_out else _reblock(bb, x, keep[1], cb) if reblock else _to_layout(bb, x, "nchwc", cb)
    names = {}
    args = [xin]
    for role_key, arr, role in args_in:
        v = plan.new_input(f"{L.safe}_{role_key}", arr, role, L.node)
        names[role_key] = v.name
        args.append(v)
    oa = op.out_arg
    y = bb.emit(relax.call_tir(gv, relax.Tuple(args), relax.TensorType(list(oa.shape), oa.dtype)))
    out = plan.output(bb, y, "nchwc", op.params["cb"], wl.c_out, qo)
    plan.layer_rows.append(dict(node=L.node, weight=L.weight, workload=wl.to_dict(), kernel=name,
                                schedule=entry["schedule"], layout="nchwc", groups=wl.groups,
                                pieces=[dict(kernel=name, out_channels=[0, wl.c_out], c_out_padded=wl.c_out,
                                             inputs=names)],
                                fused_epilogue={"bias": bias is not None, "relu": relu,
                                                **({"quant_out": True} if qo is not None else {})} if epi else None,
                                input_layout="kept" if laid_out else f"reblocked {keep[1]}c->{cb}c" if reblock
                                else "converted",
                                **({"input_quantized_by": "the previous kernel"} if u8 is not None else {}),
                                **L.report, **({"activation": L.act} if L.act else {})))
    return out, bool(epi)


def _mapped_depthwise(plan, bb, call, L, epi, m):
    """A depthwise conv of a ``Mapped`` input (channel_maps.py) run on its physical channels, each
    weight at its channel's place (zeros elsewhere): the output keeps the input's map; None when the
    kernel cannot read the input's block as it is. Integer exports quantize the mapped tensor first (its
    empty channels, zeros, become the zero point) and dequantize in the kernel's epilogue."""
    from tvm import relax  # lazy: heavy (TVM)
    from .channel_maps import Mapped, to_logical

    a = call.attrs
    q = plan.opts.quantize
    if q not in GROUPED_VARIANTS or (q in ("int8", "kmeans_int8") and not L.act):
        return None
    n, c, h, w = (int(v) for v in call.args[0].ty.shape)
    cp = m.c_phys
    try:
        wl = workload_of(L.node, [n, cp, h, w], [cp, 1, *L.w.shape[2:]], cp, a.strides, a.padding, a.dilation)
    except TvmqError:
        return None
    bias = epi.get("bias") if epi else None
    relu = epi.get("relu") if epi else False
    try:
        op, gv, name, entry = _plan_kernel(plan, bb, wl, q, bias is not None, relu, False, m.block)
        if (op.params.get("data_block") or op.params["cb"]) != m.block:
            return None
        integer = q in ("int8", "kmeans_int8")
        if integer:  # int8 weights (kmeans_int8: decoded from the codebook) and scales at their channels
            src = int8_weights(L.quant, q)
            ws = np.zeros(cp, np.float32)
            ws[m.phys] = channel_scales(L.quant["w_scale"], c)
        else:
            src = np.asarray(L.quant["weight"] if q == "none" else
                             np.asarray(L.quant["codebook"])[L.quant["indices"]], np.float32)
        wp = np.zeros((cp, *src.shape[1:]), src.dtype)
        wp[m.phys] = src
        bp = None
        if bias is not None:
            bp = np.zeros(cp, np.float32)
            bp[m.phys] = bias
        args_in = layer_args(wl, op, {"q": wp, "w_scale": ws} if integer else {"weight": wp}, "int8" if integer
                             else "none", L.act if integer else None, bp, None)
    except TvmqError as e:
        print(f"tvmq export: note: layer {L.node!r}: no grouped kernel on its mapped input ({e})", file=sys.stderr)
        return None
    if wl.name not in entry["layers"]:
        entry["layers"].append(wl.name)
    data = quantize(bb, m.tensor, L.act["scale"], L.act["zero_point"]) if integer else m.tensor
    names, args = {}, [data]
    for role_key, arr, role in args_in:
        v = plan.new_input(f"{L.safe}_{role_key}", arr, role + (", at its channels' places" if role_key in ("w", "q") else ""),
                           L.node)
        names[role_key] = v.name
        args.append(v)
    oa = op.out_arg
    y = bb.emit(relax.call_tir(gv, relax.Tuple(args), relax.TensorType(list(oa.shape), oa.dtype)))
    m_out = Mapped(y, op.params["cb"], m.phys)
    out = to_logical(bb, m_out, c)
    plan.mapped[out] = m_out
    plan.layer_rows.append(dict(node=L.node, weight=L.weight, workload=wl.to_dict(), kernel=name,
                                schedule=entry["schedule"], layout="nchwc", groups=wl.groups,
                                pieces=[dict(kernel=name, out_channels=[0, c], c_out_padded=cp,
                                             out_rows=m.phys.tolist(), inputs=names)],
                                fused_epilogue={"bias": bias is not None, "relu": relu} if epi else None,
                                input_layout="mapped", **L.report, **({"activation": L.act} if integer else {})))
    return out, bool(epi)
