"""Grouped and depthwise convolution: ``conv2d_nchwc_grouped_{float,int8}``.

Layout NCHWc with channels blocked by ``cb`` (the vector lanes): data [N][C_in/cb][H][W][cb], output
[N][C_out/cb][Ho][Wo][cb]. Weights: depthwise (groups == C_in == C_out) [C/cb][Kh][Kw][cb]; otherwise
[C_out/cb][C_in/groups][Kh][Kw][cb] (output channel o reads input channel (o // (C_out/groups)) *
(C_in/groups) + rc). Depthwise reads the input block of its own output block: no channel arithmetic.

The conv block's loops are n, oo, y, x, oi (spatial) and [rc,] r, s (reduction); the template
``conv2d_grouped`` splits, orders and annotates them. Epilogues: float bias/ReLU as in
``tvmq.ops.float.add_epilogue``; int8 the zero-point correction and requantize/dequantize of
``tvmq.ops.integer.int_epilogue``.
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from . import reference as R
from .base import OpSpec, register
from .float import add_epilogue, data_block_param, finish_reference
from .integer import check_int, epilogue_reference, int_epilogue, quant_out_input, quantize_reference


def default_cb(wl) -> int:
    """The largest block up to 16 that divides both channel counts."""
    return max(d for d in range(1, 17) if wl.c_in % d == 0 and wl.c_out % d == 0)


def check(wl, cb):
    if wl.groups == 1:
        raise TvmqError(f"workload {wl.name!r}: groups=1 is an ordinary convolution; use the direct variants")
    if wl.c_in % cb or wl.c_out % cb:
        raise TvmqError(f"grouped layout: channel block cb={cb} must divide c_in={wl.c_in} and c_out={wl.c_out}")


def check_data_block(wl, cb, xb):
    """A data block other than ``cb``: it must divide c_in, and be a multiple of ``cb`` for depthwise
    (each vector of ``cb`` channels then stays within one block)."""
    if wl.c_in % xb or (wl.depthwise and xb % cb):
        raise TvmqError(f"grouped layout: data block {xb} must divide c_in={wl.c_in}"
                        + (f" and be a multiple of cb={cb} (depthwise)" if wl.depthwise else ""))


def shapes(wl, cb, xb=None):
    """(data shape, weight shape, output shape) in NCHWc; ``xb``: the data's block where it is not ``cb``."""
    n, ho, wo = wl.n, wl.out_h, wl.out_w
    xb = xb or cb
    if wl.depthwise:
        wshape = (wl.c_out // cb, wl.kh, wl.kw, cb)
    else:
        wshape = (wl.c_out // cb, wl.c_in_per_group, wl.kh, wl.kw, cb)
    return (n, wl.c_in // xb, wl.h, wl.w, xb), wshape, (n, wl.c_out // cb, ho, wo, cb)


# -- numpy layouts --------------------------------------------------------
def weight_to_layout(w: np.ndarray, wl, cb: int) -> np.ndarray:
    """(C_out, C_in/groups, Kh, Kw) -> the kernel's weight layout."""
    o, ipg, kh, kw = w.shape
    b = w.reshape(o // cb, cb, ipg, kh, kw).transpose(0, 2, 3, 4, 1)  # [O/cb][ipg][Kh][Kw][cb]
    return np.ascontiguousarray(b[:, 0] if wl.depthwise else b)


def weight_from_layout(w: np.ndarray, wl) -> np.ndarray:
    if wl.depthwise:
        w = w[:, None]
    oo, ipg, kh, kw, cb = w.shape
    return np.ascontiguousarray(w.transpose(0, 4, 1, 2, 3).reshape(oo * cb, ipg, kh, kw))


def _conv(wl, cb, X, W, pad_value, mul, acc_dtype, xb=None):
    """(conv tensor, pad tensor or None): the grouped convolution in NCHWc over a hard pad stage; the
    data in blocks of ``xb`` (default ``cb``)."""
    from tvm import te, tirx  # lazy: heavy (TVM)

    top, left, bottom, right = wl.pad
    xb = xb or cb
    if xb != cb:
        check_data_block(wl, cb, xb)
    dshape, _, oshape = shapes(wl, cb, xb)
    if any(wl.pad):
        pshape = (dshape[0], dshape[1], wl.h + top + bottom, wl.w + left + right, xb)

        def fpad(n, c, y, x, ci):
            cond = tirx.all(y >= top, y < wl.h + top, x >= left, x < wl.w + left)
            return tirx.if_then_else(cond, X[n, c, y - top, x - left, ci], pad_value)

        P = te.compute(pshape, fpad, name="pad")
    else:
        P = X
    sh, sw = wl.stride
    r = te.reduce_axis((0, wl.kh), name="r")
    s = te.reduce_axis((0, wl.kw), name="s")
    if wl.depthwise:
        k = xb // cb  # output blocks per data block: block oo // k, lanes from (oo % k) * cb

        def f(n, oo, y, x, oi):
            blk, lane = (oo, oi) if k == 1 else (oo // k, oo % k * cb + oi)
            return te.sum(mul(P[n, blk, y * sh + r, x * sw + s, lane], W[oo, r, s, oi]).astype(acc_dtype), axis=[r, s])
    else:
        ipg, opg = wl.c_in_per_group, wl.c_out // wl.groups
        rc = te.reduce_axis((0, ipg), name="rc")

        def f(n, oo, y, x, oi):
            c = ((oo * cb + oi) // opg) * ipg + rc
            return te.sum(mul(P[n, c // xb, y * sh + r, x * sw + s, c % xb], W[oo, rc, r, s, oi]).astype(acc_dtype),
                          axis=[rc, r, s])
    return te.compute(oshape, f, name="conv"), (P if any(wl.pad) else None)


def _to_data(x, cb):
    return R.nchw_to_nchwc(x, cb)


@register("grouped_float")
def conv2d_grouped_float(wl, cb=None, padding="hard", bias=False, relu=False, data_block=None) -> OpSpec:
    """float32 grouped / depthwise convolution in NCHWc (``padding`` is always a pad stage);
    ``data_block``: the data's channel block when it is not ``cb`` (a model's previous kernel wrote it)."""
    from tvm import te, tirx  # lazy: heavy (TVM)

    cb = cb or default_cb(wl)
    check(wl, cb)
    xb = data_block or cb
    dshape, wshape, _ = shapes(wl, cb, xb)
    X = te.placeholder(dshape, "float32", name="data")
    W = te.placeholder(wshape, "float32", name="weight")
    out, _ = _conv(wl, cb, X, W, tirx.const(0.0, "float32"), lambda a, b: a * b, "float32", xb)
    out, extra = add_epilogue(out, "nchwc", cb, bias, relu, wl.c_out)

    def make_inputs(rng):
        x = rng.uniform(-1, 1, (wl.n, wl.c_in, wl.h, wl.w)).astype("float32")
        w = rng.uniform(-1, 1, (wl.c_out, wl.c_in_per_group, wl.kh, wl.kw)).astype("float32")
        ins = [_to_data(x, xb), weight_to_layout(w, wl, cb)]
        if bias:
            ins.append(rng.uniform(-1, 1, wl.c_out).astype("float32"))
        return ins

    def reference(ins):
        x = R.nchwc_to_nchw(ins[0])
        w = weight_from_layout(ins[1], wl)
        y = finish_reference(R.conv2d_grouped_nchw(x, w, wl), ins[2] if bias else None, relu)
        return R.nchw_to_nchwc(y, cb)

    k = wl.c_in_per_group * wl.kh * wl.kw
    return OpSpec(
        name="conv2d_nchwc_grouped_float", variant="grouped_float", layout="nchwc", workload=wl,
        params=dict(cb=cb, ib=cb, ob=cb, padding="hard", bias=bias, relu=relu, **data_block_param(cb, xb)),
        tensors=[X, W, *extra, out], make_inputs=make_inputs, reference=reference, atol=1e-6 * k + 1e-5, rtol=1e-4,
    )


@register("grouped_int8")
def conv2d_grouped_int8(wl, cb=None, padding="hard", act="uint8", epilogue="requant", shift=30, bias=False,
                        relu=False, quant_out=False, data_block=None) -> OpSpec:
    """uint8 activations (zero point) x int8 weights, int32 accumulation, then the integer epilogue of
    ``tvmq.ops.integer`` (requantize to int8 by default; ``dequant`` for float out with bias/ReLU, and
    ``quant_out`` to quantize that to the next layer's uint8 activations)."""
    from tvm import te  # lazy: heavy (TVM)

    if act != "uint8":
        raise TvmqError(f"grouped_int8: activations must be uint8, got {act!r}")
    check_int(act, "int8", epilogue, shift)
    cb = cb or default_cb(wl)
    check(wl, cb)
    xb = data_block or cb
    dshape, wshape, _ = shapes(wl, cb, xb)
    X = te.placeholder(dshape, "uint8", name="data")
    W = te.placeholder(wshape, "int8", name="weight")
    XZ = te.placeholder((1,), "int32", name="x_zp")
    acc, _ = _conv(wl, cb, X, W, XZ[0].astype("uint8"), lambda a, b: a.astype("int32") * b.astype("int32"), "int32",
                   xb)
    out, extra = int_epilogue(acc, XZ, "nchwc", cb, wl.c_out, epilogue, shift, bias, relu, quant_out=quant_out)
    k = wl.c_in_per_group * wl.kh * wl.kw

    def make_inputs(rng):
        x = rng.integers(0, 256, (wl.n, wl.c_in, wl.h, wl.w)).astype("uint8")
        w = rng.integers(-128, 128, (wl.c_out, wl.c_in_per_group, wl.kh, wl.kw))
        zp = np.array([rng.integers(0, 256)], "int32")
        wsum = w.reshape(wl.c_out, -1).sum(1).astype("int32")
        if epilogue == "requant":  # multiplier so outputs span the int8 range: |acc| ~ 128 * 128 * sqrt(k)
            m = (rng.uniform(0.5, 1.5, wl.c_out) * 2.0 ** shift * 100 / (128 * 128 * np.sqrt(k))).astype("int32")
            epi = [m, np.array([3], "int32")]
        elif epilogue == "dequant":
            epi = [rng.uniform(1e-4, 1e-3, wl.c_out).astype("float32")]
        else:
            epi = []
        return [_to_data(x, xb), weight_to_layout(w, wl, cb).astype("int8"), zp, wsum, *epi,
                *([rng.uniform(-1, 1, wl.c_out).astype("float32")] if bias else []),
                *([quant_out_input(rng, k)] if quant_out else [])]

    def reference(ins):
        x = R.nchwc_to_nchw(ins[0])
        w = weight_from_layout(ins[1], wl)
        zp = int(ins[2][0])
        a = R.conv2d_grouped_nchw(x, w, wl, pad_value=zp, acc=np.int64)
        y = epilogue_reference(a, zp, ins[3], epilogue, ins[4:], shift)
        k = len(ins) - (1 if quant_out else 0)
        y = finish_reference(y, ins[k - 1] if bias else None, relu) if bias or relu else y
        return R.nchw_to_nchwc(quantize_reference(y, ins[-1]) if quant_out else y, cb)

    return OpSpec(
        name="conv2d_nchwc_grouped_int8", variant="grouped_int8", layout="nchwc", workload=wl,
        params=dict(cb=cb, ib=cb, ob=cb, padding="hard", act=act, weight="int8", epilogue=epilogue, shift=shift,
                    **({"bias": bias, "relu": relu} if bias or relu else {}),
                    **({"quant_out": True} if quant_out else {}), **data_block_param(cb, xb)),
        tensors=[X, W, XZ, *extra, out], make_inputs=make_inputs, reference=reference, atol=1e-3, rtol=1e-5,
        int_tol=1 if quant_out else 0,
    )
