"""float32 direct convolution: ``conv2d_{nchw,nhwc,nchwc}_float``."""

from __future__ import annotations

import numpy as np

from . import direct as D
from . import reference as R
from .base import OpSpec, register


def largest_divisor(n: int, cap: int = 16) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def blocks(wl, ib=None, ob=None):
    """Default channel blocks for nchwc: the largest divisors up to 16."""
    return ib or largest_divisor(wl.c_in), ob or largest_divisor(wl.c_out)


def float_tolerance(wl):
    k = wl.c_in * wl.kh * wl.kw
    return 1e-6 * k + 1e-5, 1e-4


def channel_of(layout, idx, ob):
    """Output-channel index of an output element, per layout."""
    if layout == "nchw":
        return idx[1]
    if layout == "nhwc":
        return idx[3]
    return idx[1] * ob + idx[4]


def add_epilogue(out, layout, ob, bias, relu, c_out, name="epilogue", residual=False):
    """Optional bias, residual (a tensor of the output's shape and layout) and ReLU as one elementwise
    stage, in that order; returns (out, extra inputs)."""
    from tvm import te  # lazy: heavy (TVM)

    if not (bias or relu or residual):
        return out, []
    extra = []
    if bias:
        B = te.placeholder((c_out,), "float32", name="bias")
        extra.append(B)
    if residual:
        S = te.placeholder(out.shape, "float32", name="residual")
        extra.append(S)

    def f(*idx):
        v = out[idx]
        if bias:
            v = v + B[channel_of(layout, idx, ob)]
        if residual:
            v = v + S[idx]
        return relu_value(v, relu)

    return te.compute(out.shape, f, name=name), extra


def residual_input(rng, wl, layout, ob):
    """A random residual operand in the output's layout."""
    y = rng.uniform(-1, 1, (wl.n, wl.c_out, wl.out_h, wl.out_w)).astype("float32")
    return D.to_layout_out(y, layout, ob)


def relu_value(v, relu):
    """ReLU of a float32 TIR value: ``relu`` True, or a number: the upper clip too (6.0: ReLU6)."""
    from tvm import tirx  # lazy: heavy (TVM)

    if relu:
        v = tirx.max(v, tirx.const(0.0, "float32"))
    if relu and relu is not True:
        v = tirx.min(v, tirx.const(float(relu), "float32"))
    return v


def finish_reference(y_nchw, bias_arr, relu, residual=None):
    """The fused epilogue in numpy: + bias, + residual (NCHW), then ReLU (capped where ``relu`` is a number)."""
    if bias_arr is not None:
        y_nchw = y_nchw + bias_arr.reshape(1, -1, 1, 1)
    if residual is not None:
        y_nchw = y_nchw + residual
    if relu:
        y_nchw = np.maximum(y_nchw, 0)
    if relu and relu is not True:
        y_nchw = np.minimum(y_nchw, np.float32(relu))
    return y_nchw


@register("float")
def conv2d_float(wl, layout="nchwc", padding="hard", ib=None, ob=None, bias=False, relu=False,
                 residual=False, data_block=None, gather=0) -> OpSpec:
    """float32 direct convolution with hard (pad stage) or soft (bounds check) padding.
    ``data_block``: the data's channel block when it is not ``ib`` (a model's previous kernel wrote it).
    ``gather``: the data has that many channels (NCHW{data_block}c, passed flat) and an int32 input
    ``chan`` [c_out / ob, c_in] holds, per output block and input channel, where that channel starts in
    the flat data (``chan_offsets``): a grouped 1x1 convolution in one call, its groups' channels
    wherever the producer put them."""
    return float_like_conv(wl, "float", layout, padding, ib, ob, bias, relu, residual=residual, data_block=data_block,
                           gather=gather)


def gather_checks(wl, layout, ib, ob, xb, gather) -> int:
    """The data block of a gathered conv (``conv2d_float``'s ``gather``), after checking it applies."""
    from ..errors import TvmqError

    if layout != "nchwc" or (wl.kh, wl.kw, wl.stride) != (1, 1, (1, 1)) or any(wl.pad):
        raise TvmqError("gather: only a 1x1, stride 1, unpadded convolution in layout nchwc reads gathered channels")
    if gather % xb:
        raise TvmqError(f"gather: data block {xb} does not divide the data's {gather} channels")
    D.check_blocks(wl, ib, ob)
    return xb


def chan_offsets(chan, wl, xb: int) -> np.ndarray:
    """``chan`` (data channels) as a gathered conv reads them: where each channel starts in one image's
    flat NCHW{xb}c data."""
    chan = np.asarray(chan, np.int64)
    return (chan // xb * (wl.h * wl.w * xb) + chan % xb).astype(np.int32)


def offset_channels(off, wl, xb: int) -> np.ndarray:
    """The data channels of ``chan_offsets``."""
    off = np.asarray(off, np.int64)
    return off // (wl.h * wl.w * xb) * xb + off % xb


def gathered_conv(x, w, wl, chan, ob):
    """numpy: output block ``oo`` of the 1x1 conv reads data channels ``chan[oo]`` as its input channels."""
    y = np.zeros((wl.n, wl.c_out, wl.h, wl.w), np.float64)
    for oo in range(wl.c_out // ob):
        xs = x[:, chan[oo]].astype(np.float64)
        y[:, oo * ob:(oo + 1) * ob] = np.einsum("oc,nchw->nohw", w[oo * ob:(oo + 1) * ob, :, 0, 0], xs)
    return y


def data_block_param(ib, xb) -> dict:
    """The operator parameter ``data_block`` where it differs from ``ib`` (else nothing: the same op)."""
    return {"data_block": xb} if xb and xb != ib else {}


def _same(v):
    return v


def float_like_conv(wl, variant, layout="nchwc", padding="hard", ib=None, ob=None, bias=False, relu=False,
                    storage="float32", widen=_same, encode=_same, decode=_same, residual=False,
                    data_block=None, gather=0) -> OpSpec:
    """A direct convolution accumulated in float32 whose data and weights are stored as ``storage``:
    ``widen`` turns a stored TIR value into float32, ``encode``/``decode`` do the same for numpy arrays
    (float32 itself; bf16 as uint16 bits, tvmq.ops.bf16)."""
    from tvm import te  # lazy: heavy (TVM)

    ib, ob = blocks(wl, ib, ob)
    xb = data_block or ib
    if gather:
        xb = gather_checks(wl, layout, ib, ob, xb, gather)
        _, wshape, _, hw = D.shapes(wl, layout, ib, ob)
        dshape = (wl.n * gather * wl.h * wl.w,)
    else:
        dshape, wshape, _, hw = D.shapes(wl, layout, ib, ob, xb)
    X = te.placeholder(dshape, storage, name="data")
    W = te.placeholder(wshape, storage, name="weight")
    T = te.placeholder((wl.c_out // ob, wl.c_in), "int32", name="chan") if gather else None
    read, _ = D.padded_reader(X, wl, hw, 0.0 if storage == "float32" else 0, padding)  # bits 0: +0.0
    plane = gather * wl.h * wl.w  # one image's data
    out = D.conv(wl, layout, read, lambda *i: W[i], lambda a, b: widen(a) * widen(b), "float32", ib, ob, xb=xb,
                 chan=(lambda n, oo, c, y, x: n * plane + T[oo, c] + (y * wl.w + x) * xb) if gather else None)
    out, extra = add_epilogue(out, layout, ob, bias, relu, wl.c_out, residual=residual)

    def make_inputs(rng):
        x = encode(rng.uniform(-1, 1, (wl.n, gather or wl.c_in, wl.h, wl.w)).astype("float32"))
        w = encode(rng.uniform(-1, 1, (wl.c_out, wl.c_in, wl.kh, wl.kw)).astype("float32"))
        ins = [D.to_layout_data(x, layout, xb), D.to_layout_weight(w, layout, ib, ob)]
        if gather:
            ins[0] = ins[0].reshape(-1)
            ins.append(chan_offsets(rng.integers(0, gather, (wl.c_out // ob, wl.c_in)), wl, xb))
        if bias:
            ins.append(rng.uniform(-1, 1, wl.c_out).astype("float32"))
        if residual:
            ins.append(residual_input(rng, wl, layout, ob))
        return ins

    def reference(ins):
        x = ins[0].reshape(wl.n, gather // xb, wl.h, wl.w, xb) if gather else ins[0]
        x = decode(D.from_layout_data(x, layout))
        w = decode(D.from_layout_weight(ins[1], layout, wl, ib, ob))
        y = gathered_conv(x, w, wl, offset_channels(ins[2], wl, xb), ob) if gather else R.conv2d_nchw(x, w, wl)
        y = finish_reference(y, ins[2 + bool(gather)] if bias else None, relu,
                             D.from_layout_data(ins[-1], layout) if residual else None)
        return D.to_layout_out(y, layout, ob)

    atol, rtol = float_tolerance(wl)
    return OpSpec(
        name=f"conv2d_{layout}_{variant}", variant=variant, layout=layout, workload=wl,
        params=dict(padding=padding, ib=ib, ob=ob, bias=bias, relu=relu, **({"residual": True} if residual else {}),
                    **data_block_param(ib, xb), **({"gather": gather} if gather else {})),
        tensors=[X, W, *([T] if gather else []), *extra, out], make_inputs=make_inputs, reference=reference, atol=atol, rtol=rtol,
    )
