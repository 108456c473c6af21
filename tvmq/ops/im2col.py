"""im2col + GEMM baselines: ``conv2d_im2col_{float,int8,codebook}``.

The input is unfolded into a (Cin*Kh*Kw) x (Ho*Wo) matrix per image (the
thesis's baseline, costing ``ConvWorkload.im2col_bytes`` extra), then
multiplied by the (Cout) x (Cin*Kh*Kw) weight matrix. The matrix is stored
as [N][Cin][Kh][Kw][Ho][Wo] (the same bytes as [N][K][P]) so that neither
stage needs a division to find its indices. The output is NCHW. The unfold
is part of the timed kernel.
"""

from __future__ import annotations

import numpy as np

from . import reference as R
from .base import OpSpec, register
from .codebook import check_codebook, index_reader
from .float import float_tolerance
from .integer import epilogue_inputs, epilogue_reference, int_epilogue


def _im2col(wl, X, pad_value):
    from tvm import te, tirx  # lazy: heavy (TVM)

    K, P = wl.c_in * wl.kh * wl.kw, wl.out_h * wl.out_w
    (sh, sw), (top, left, _, _) = wl.stride, wl.pad

    def f(n, c, r, s, y, x):
        yy, xx = y * sh + r - top, x * sw + s - left
        inside = tirx.all(yy >= 0, yy < wl.h, xx >= 0, xx < wl.w)
        return tirx.if_then_else(inside, X[n, c, yy, xx], pad_value)

    shape = (wl.n, wl.c_in, wl.kh, wl.kw, wl.out_h, wl.out_w)
    return te.compute(shape, f, name="im2col"), K, P


def _gemm(wl, col, weight, mul, acc_dtype, K, P):
    """out[n, o, y, x] = sum over k = (c, r, s) of W[o, k] * col[n, k, (y, x)]."""
    from tvm import te  # lazy: heavy (TVM)

    c = te.reduce_axis((0, wl.c_in), name="c")
    r = te.reduce_axis((0, wl.kh), name="r")
    s = te.reduce_axis((0, wl.kw), name="s")
    kk = lambda: (c * wl.kh + r) * wl.kw + s  # noqa: E731
    return te.compute(
        (wl.n, wl.c_out, wl.out_h, wl.out_w),
        lambda n, o, y, x: te.sum(mul(weight(o, kk()), col[n, c, r, s, y, x]).astype(acc_dtype), axis=[c, r, s]),
        name="conv",
    )


def _flat(y_nchw):
    return y_nchw


def _x(rng, wl):
    return rng.uniform(-1, 1, (wl.n, wl.c_in, wl.h, wl.w)).astype("float32")


@register("im2col_float")
def conv2d_im2col_float(wl) -> OpSpec:
    from tvm import te, tirx  # lazy: heavy (TVM)

    X = te.placeholder((wl.n, wl.c_in, wl.h, wl.w), "float32", name="data")
    col, K, P = _im2col(wl, X, tirx.const(0.0, "float32"))
    W = te.placeholder((wl.c_out, K), "float32", name="weight")
    out = _gemm(wl, col, lambda o, k: W[o, k], lambda a, b: a * b, "float32", K, P)

    def make_inputs(rng):
        return [_x(rng, wl), rng.uniform(-1, 1, (wl.c_out, K)).astype("float32")]

    def reference(ins):
        return _flat(R.conv2d_nchw(ins[0], ins[1].reshape(wl.c_out, wl.c_in, wl.kh, wl.kw), wl))

    atol, rtol = float_tolerance(wl)
    return OpSpec("conv2d_im2col_float", "im2col_float", "im2col", wl, {}, [X, W, out], make_inputs, reference,
                  atol, rtol)


@register("im2col_codebook")
def conv2d_im2col_codebook(wl, bits=5, entries=None) -> OpSpec:
    from tvm import te, tirx  # lazy: heavy (TVM)

    entries = check_codebook(bits, entries, False)
    X = te.placeholder((wl.n, wl.c_in, wl.h, wl.w), "float32", name="data")
    col, K, P = _im2col(wl, X, tirx.const(0.0, "float32"))
    I, code = index_reader((wl.c_out, K), bits, False)
    CB = te.placeholder((entries,), "float32", name="codebook")
    dec = te.compute((wl.c_out, K), lambda o, k: CB[code(o, k)], name="decode")
    out = _gemm(wl, col, lambda o, k: dec[o, k], lambda a, b: a * b, "float32", K, P)

    def make_inputs(rng):
        idx = rng.integers(0, entries, (wl.c_out, K)).astype("uint8")
        return [_x(rng, wl), idx, np.sort(rng.uniform(-1, 1, entries)).astype("float32")]

    def reference(ins):
        w = ins[2][ins[1]].reshape(wl.c_out, wl.c_in, wl.kh, wl.kw)
        return _flat(R.conv2d_nchw(ins[0], w, wl))

    atol, rtol = float_tolerance(wl)
    return OpSpec("conv2d_im2col_codebook", "im2col_codebook", "im2col", wl, dict(bits=bits, entries=entries),
                  [X, I, CB, out], make_inputs, reference, atol, rtol)


@register("im2col_int8")
def conv2d_im2col_int8(wl, epilogue="requant", shift=30) -> OpSpec:
    from tvm import te  # lazy: heavy (TVM)

    X = te.placeholder((wl.n, wl.c_in, wl.h, wl.w), "uint8", name="data")
    XZ = te.placeholder((1,), "int32", name="x_zp")
    col, K, P = _im2col(wl, X, XZ[0].astype("uint8"))
    W = te.placeholder((wl.c_out, K), "int8", name="weight")
    acc = _gemm(wl, col, lambda o, k: W[o, k].astype("int32"), lambda a, b: a * b.astype("int32"), "int32", K, P)
    out, extra = int_epilogue(acc, XZ, "nchw", 1, wl.c_out, epilogue, shift)

    def make_inputs(rng):
        w = rng.integers(-128, 128, (wl.c_out, K)).astype("int8")
        x = rng.integers(0, 256, (wl.n, wl.c_in, wl.h, wl.w)).astype("uint8")
        zp = np.array([rng.integers(0, 256)], "int32")
        return [x, w, zp, w.astype(np.int32).sum(1).astype("int32"), *epilogue_inputs(rng, wl, epilogue)]

    def reference(ins):
        zp = int(ins[2][0])
        w = ins[1].reshape(wl.c_out, wl.c_in, wl.kh, wl.kw)
        acc = R.conv2d_nchw(ins[0], w, wl, pad_value=zp, acc=np.int64)
        return _flat(epilogue_reference(acc, zp, ins[3], epilogue, ins[4:], shift))

    return OpSpec("conv2d_im2col_int8", "im2col_int8", "im2col", wl, dict(epilogue=epilogue, shift=shift),
                  [X, W, XZ, *extra, out], make_inputs, reference, 1e-3, 1e-5)
