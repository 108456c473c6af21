"""int8 convolution on Intel AMX tiles (``tdpbusd``: u8 x s8 -> s32), in the tiling of
:func:`tvmq.templates.amx.kernel_parts`.

Layouts: data [N][C/B][H][W][B] uint8 (B = 64, or the largest power of two dividing C), weight
``amx`` [O/16][CP/64][Kh][Kw][16][16][4] int8, output [N][O/16][Ho][Wo][16]. The input is padded
with the activation zero point and the accumulators start at ``-x_zp * wsum[o]``, so each block
holds the zero-point-corrected sums; the epilogue then requantizes them to int8 (fixed-point
multiplier) or dequantizes them to float32 (scale, bias, residual, ReLU).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import amx


def _start(p, O):
    """``start(data, weight, x_zp, wsum, store, bufs)``: the zero-point-padded input, the accumulators'
    start rows, then every task with ``store`` as its epilogue (a TIR macro)."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    fill_pad, run_tasks = p.fill_pad, p.run_tasks

    @T.macro
    def start(data, weight, x_zp, wsum, store, bufs):
        pad = T.alloc_buffer(p.pad_shape, "uint8")  # padded with the zero point
        fill_pad(data, pad, T.Cast("uint8", x_zp[0]))
        init = T.alloc_buffer((O,), "int32")  # the accumulators start at -x_zp * wsum[o]
        for o in range(O):
            init[o] = T.int32(0) - x_zp[0] * wsum[o]
        run_tasks(pad, weight, init, store, bufs)

    return start


def conv2d_amx_int8(wl, rows: int = 16, m_tiles: int = 1, n_tiles: int = 2, shift: int = 30, flat: bool = False):
    """The PrimFunc ``main(data, weight, x_zp, wsum, multiplier, y_zp, out)``: int8 tiles, then each
    task's block requantized to int8 while in cache."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    p = amx.kernel_parts(wl, rows, m_tiles, n_tiles, flat, "int8")
    O, ROUND = wl.c_out, 1 << (shift - 1)
    start = _start(p, O)

    @T.macro
    def requant(acc, j, x, n, ob, y, xo, b):
        for oi in T.vectorized(16):
            b.out[n, ob, y, xo, oi] = T.Cast("int8", T.max(T.min(T.Cast("int32", (
                T.Cast("int64", acc[j, x, oi]) * T.Cast("int64", b.multiplier[ob * 16 + oi]) + T.int64(ROUND))
                >> T.int64(shift)) + b.y_zp[0], 127), -128))

    @T.prim_func(s_tir=True)
    def main(data: T.Buffer(p.dshape, "uint8"), weight: T.Buffer(p.wshape, "int8"), x_zp: T.Buffer((1,), "int32"),
             wsum: T.Buffer((O,), "int32"), multiplier: T.Buffer((O,), "int32"), y_zp: T.Buffer((1,), "int32"),
             out: T.Buffer(p.oshape, "int8")):
        T.func_attr({"global_symbol": "main", "tir.noalias": True})
        start(data, weight, x_zp, wsum, requant, SimpleNamespace(out=out, multiplier=multiplier, y_zp=y_zp))

    return main


def conv2d_amx_int8_dequant(wl, rows: int = 16, m_tiles: int = 1, n_tiles: int = 2, flat: bool = False,
                            bias: bool = False, relu=False, residual: bool = False):
    """The PrimFunc ``main(data, weight, x_zp, wsum, scale[, bias][, residual], out)``: int8 tiles, then the
    block dequantized per task to float32 (``acc * scale[o] + bias[o] (+ residual)``, then ReLU, or
    clipped to [0, relu] when ``relu`` is a number): a model export's conv -> bias (-> add) -> ReLU in
    one kernel. ``residual``: float32 in the output's layout [N][O/16][Ho][Wo][16]."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    p = amx.kernel_parts(wl, rows, m_tiles, n_tiles, flat, "int8")
    O = wl.c_out
    start = _start(p, O)
    LO = 0.0 if relu is not False else -3.0e38
    HI = 3.0e38 if relu is True or relu is False else float(relu)
    RES = bool(residual)  # a Python constant: TVMScript keeps only the taken branch

    @T.macro
    def dequant(acc, j, x, n, ob, y, xo, b):
        for oi in T.vectorized(16):
            if RES:
                b.out[n, ob, y, xo, oi] = T.max(T.min(
                    T.Cast("float32", acc[j, x, oi]) * b.scale[ob * 16 + oi] + b.bias[ob * 16 + oi]
                    + b.res[n, ob, y, xo, oi], T.float32(HI)), T.float32(LO))
            else:
                b.out[n, ob, y, xo, oi] = T.max(T.min(
                    T.Cast("float32", acc[j, x, oi]) * b.scale[ob * 16 + oi] + b.bias[ob * 16 + oi],
                    T.float32(HI)), T.float32(LO))

    @T.macro
    def body(data, weight, x_zp, wsum, scale, bvec, res, out):
        start(data, weight, x_zp, wsum, dequant, SimpleNamespace(out=out, scale=scale, bias=bvec, res=res))

    if bias and residual:
        @T.prim_func(s_tir=True)
        def main(data: T.Buffer(p.dshape, "uint8"), weight: T.Buffer(p.wshape, "int8"), x_zp: T.Buffer((1,), "int32"),
                 wsum: T.Buffer((O,), "int32"), scale: T.Buffer((O,), "float32"), bias_: T.Buffer((O,), "float32"),
                 residual_: T.Buffer(p.oshape, "float32"), out: T.Buffer(p.oshape, "float32")):
            T.func_attr({"global_symbol": "main", "tir.noalias": True})
            body(data, weight, x_zp, wsum, scale, bias_, residual_, out)
    elif bias:
        @T.prim_func(s_tir=True)
        def main(data: T.Buffer(p.dshape, "uint8"), weight: T.Buffer(p.wshape, "int8"), x_zp: T.Buffer((1,), "int32"),
                 wsum: T.Buffer((O,), "int32"), scale: T.Buffer((O,), "float32"), bias_: T.Buffer((O,), "float32"),
                 out: T.Buffer(p.oshape, "float32")):
            T.func_attr({"global_symbol": "main", "tir.noalias": True})
            body(data, weight, x_zp, wsum, scale, bias_, None, out)
    elif residual:
        @T.prim_func(s_tir=True)
        def main(data: T.Buffer(p.dshape, "uint8"), weight: T.Buffer(p.wshape, "int8"), x_zp: T.Buffer((1,), "int32"),
                 wsum: T.Buffer((O,), "int32"), scale: T.Buffer((O,), "float32"),
                 residual_: T.Buffer(p.oshape, "float32"), out: T.Buffer(p.oshape, "float32")):
            T.func_attr({"global_symbol": "main", "tir.noalias": True})
            zero = T.alloc_buffer((O,), "float32")
            for o in range(O):
                zero[o] = T.float32(0)
            body(data, weight, x_zp, wsum, scale, zero, residual_, out)
    else:
        @T.prim_func(s_tir=True)
        def main(data: T.Buffer(p.dshape, "uint8"), weight: T.Buffer(p.wshape, "int8"), x_zp: T.Buffer((1,), "int32"),
                 wsum: T.Buffer((O,), "int32"), scale: T.Buffer((O,), "float32"), out: T.Buffer(p.oshape, "float32")):
            T.func_attr({"global_symbol": "main", "tir.noalias": True})
            zero = T.alloc_buffer((O,), "float32")
            for o in range(O):
                zero[o] = T.float32(0)
            body(data, weight, x_zp, wsum, scale, zero, None, out)

    return main


def make_inputs(wl, rng, epilogue: str = "requant"):
    """Random inputs in the kernel's layouts: data, weight, x_zp, wsum, then multiplier and y_zp
    (``requant``) or the float scale (``dequant``)."""
    from ..ops import direct as D  # op <-> template cycle
    from ..ops.integer import epilogue_inputs  # op <-> template cycle

    x = rng.integers(0, 256, (wl.n, wl.c_in, wl.h, wl.w)).astype("uint8")
    w = rng.integers(-128, 128, (wl.c_out, wl.c_in, wl.kh, wl.kw))
    zp = np.array([rng.integers(0, 256)], "int32")
    wsum = w.reshape(wl.c_out, -1).sum(1).astype("int32")
    return [D.to_layout_data(x, "amx", amx.data_block(wl.c_in)), D.to_layout_weight(w, "amx", 64, 16).astype("int8"),
            zp, wsum, *epilogue_inputs(rng, wl, epilogue)]


def to_amx_out(y_nchw):
    """An NCHW output in the kernel's output layout [N][O/16][Ho][Wo][16]."""
    from ..ops import direct as D  # op <-> template cycle

    return D.to_layout_out(y_nchw, "amx", 16)


def reference(wl, ins, shift: int = 30, epilogue: str = "requant", layout_out: bool = True):
    """The expected output from numpy: exact int8 (``requant``) or float (``dequant``), in the kernel's
    output layout [N][O/16][Ho][Wo][16] (NCHW with ``layout_out=False``)."""
    from ..ops import direct as D  # op <-> template cycle
    from ..ops import reference as R  # op <-> template cycle
    from ..ops.integer import epilogue_reference  # op <-> template cycle

    x = D.from_layout_data(ins[0], "amx")
    w = D.from_layout_weight(ins[1], "amx", wl, 64, 16)
    zp = int(ins[2][0])
    acc = R.conv2d_nchw(x, w, wl, pad_value=zp, acc=np.int64)
    y = epilogue_reference(acc, zp, ins[3], epilogue, ins[4:], shift)
    return D.to_layout_out(y, "amx", 16) if layout_out else y
