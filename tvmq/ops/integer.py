"""Integer convolution: ``conv2d_{layout}_int8`` / ``_int8w7`` / ``_int16`` / ``_int4``.

Activations are uint8/int8 (or int16) with a zero point, weights int8/int16
or int4 packed two per byte, accumulation in int32. The zero point enters as
``acc - x_zp * wsum[o]`` (``wsum`` precomputed per output channel) and the
pad value equals the zero point, so the inner loop is a plain integer
multiply-add. Epilogues: ``int32`` (raw), ``requant`` (fixed-point multiplier
per channel, back to int8) or ``dequant`` (per-channel float scale; with ``quant_out`` its float
result is quantized again to the uint8 activations of the next layer, ``out_q = [1 / scale, zero point]``,
as a model export's next kernel reads them).
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from . import direct as D
from . import reference as R
from .amx_int8 import amx_conv
from .amx_residual import amx_residual_conv
from .base import OpSpec, register
from .float import blocks, channel_of, data_block_param, finish_reference, relu_value, residual_input

ACTS = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-256, 255)}
# int7: int8 storage, values in [-64, 63], so u8 x s8 pair sums fit int16 exactly (vpmaddubsw,
# as oneDNN does on AVX-512 CPUs without VNNI by halving the weights).
WEIGHTS = {"int8": (-128, 127), "int7": (-64, 63), "int16": (-256, 255), "int4": (-8, 7)}
STORAGE = {"int7": "int8"}
EPILOGUES = ("int32", "requant", "dequant")


def check_int(act, weight, epilogue, shift):
    if act not in ACTS:
        raise TvmqError(f"unsupported activation dtype {act!r}; valid are {sorted(ACTS)}")
    if weight not in WEIGHTS:
        raise TvmqError(f"unsupported weight dtype {weight!r}; valid are {sorted(WEIGHTS)}")
    if epilogue not in EPILOGUES:
        raise TvmqError(f"unknown epilogue {epilogue!r}; valid are {list(EPILOGUES)}")
    if not 1 <= shift <= 40:
        raise TvmqError(f"requantize shift must be in 1..40, got {shift}")


def quantize_u8(v, Q):
    """A float32 TIR value as uint8 activations: ``clip(round(v * Q[0]) + Q[1], 0, 255)``, the
    export's Relax quantize (``Q = [1 / scale, zero point]``) in the same order."""
    from tvm import tirx  # lazy: heavy (TVM)

    r = tirx.round(v * Q[0]) + Q[1]
    return tirx.max(tirx.min(r, tirx.const(255.0, "float32")), tirx.const(0.0, "float32")).astype("uint8")


def quantize_reference(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numpy twin of ``quantize_u8`` (float32 throughout, round half to even)."""
    r = np.round(y.astype(np.float32) * np.float32(q[0])) + np.float32(q[1])
    return np.clip(r, 0, 255).astype(np.uint8)


def residual_inputs(rng, wl, layout, ob, residual) -> list:
    """A random residual operand in the output's layout: float32, or uint8 with its ``res_q``."""
    if residual != "uint8":
        return [residual_input(rng, wl, layout, ob)]
    z = rng.integers(0, 256, (wl.n, wl.c_out, wl.out_h, wl.out_w)).astype("uint8")
    return [D.to_layout_out(z, layout, ob), np.array([rng.uniform(0.005, 0.02), rng.integers(100, 156)], np.float32)]


def quant_out_input(rng, k: int) -> np.ndarray:
    """A random ``out_q`` for random test inputs of ``k`` products per output: their dequant outputs
    spread about 3 * sqrt(k) (uint8 x int8 at scales near 5e-4), mapped to about +-30 steps around a
    zero point near 128, so few saturate."""
    return np.array([rng.uniform(0.5, 1.5) * 10.0 / np.sqrt(k), rng.integers(100, 156)], np.float32)


def int_epilogue(acc, XZ, layout, ob, c_out, epilogue, shift, bias=False, relu=False, residual=False,
                 quant_out=False):
    """Zero-point correction plus the epilogue; returns (output, extra placeholders after x_zp).

    ``dequant`` may also add a float bias and a residual (the output's shape: float32, or with
    ``residual="uint8"`` uint8 activations and ``res_q = [scale, zero point]``) and apply ReLU
    (``relu``: True or the upper clip), fused into the same stage (a model export's conv -> bias ->
    add -> ReLU), and then quantize to uint8 (``quant_out``: one more input, ``out_q``)."""
    from tvm import te, tirx  # lazy: heavy (TVM)

    if (bias or relu or residual or quant_out) and epilogue != "dequant":
        raise TvmqError(f"a fused bias/ReLU needs the dequant epilogue (float output), not {epilogue!r}")
    WS = te.placeholder((c_out,), "int32", name="wsum")
    ch = lambda idx: channel_of(layout, idx, ob)  # noqa: E731

    def corrected(idx):
        return acc[idx] - XZ[0] * WS[ch(idx)]

    if epilogue == "int32":
        return te.compute(acc.shape, lambda *i: corrected(i), name="zp_correct"), [WS]
    if epilogue == "dequant":
        S = te.placeholder((c_out,), "float32", name="scale")
        B = [te.placeholder((c_out,), "float32", name="bias")] if bias else []
        u8 = residual == "uint8"
        Z = [te.placeholder(acc.shape, "uint8" if u8 else "float32", name="residual")] if residual else []
        Z += [te.placeholder((2,), "float32", name="res_q")] if u8 else []
        Q = [te.placeholder((2,), "float32", name="out_q")] if quant_out else []

        def res(i):
            return (Z[0][i].astype("float32") - Z[1][1]) * Z[1][0] if u8 else Z[0][i]

        def dq(*i):
            v = corrected(i).astype("float32") * S[ch(i)]
            v = v + B[0][ch(i)] if bias else v
            v = relu_value(v + res(i) if residual else v, relu)
            return quantize_u8(v, Q[0]) if quant_out else v

        return te.compute(acc.shape, dq, name="dequant"), [WS, S, *B, *Z, *Q]
    M = te.placeholder((c_out,), "int32", name="multiplier")
    YZ = te.placeholder((1,), "int32", name="y_zp")

    def rq(*i):
        v = (corrected(i).astype("int64") * M[ch(i)].astype("int64") + tirx.const(1 << (shift - 1), "int64")) >> shift
        v = v.astype("int32") + YZ[0]
        return tirx.max(tirx.min(v, 127), -128).astype("int8")

    return te.compute(acc.shape, rq, name="requant"), [WS, M, YZ]


def epilogue_inputs(rng, wl, epilogue):
    """Random epilogue parameters (multiplier keeps outputs in range, like a real requant)."""
    if epilogue == "int32":
        return []
    if epilogue == "dequant":
        return [rng.uniform(1e-4, 1e-3, wl.c_out).astype("float32")]
    k = wl.c_in * wl.kh * wl.kw
    return [rng.integers(1 << 20, 1 << 22, wl.c_out).astype("int32") // max(1, k // 64), np.array([3], "int32")]


def epilogue_reference(acc_nchw, zp, wsum, epilogue, extra, shift):
    """acc (int64, N C H W) -> the epilogue's output in NCHW."""
    acc = acc_nchw - zp * wsum.astype(np.int64).reshape(1, -1, 1, 1)
    acc = acc.astype(np.int32).astype(np.int64)  # the kernel's int32 wraps; mirror it
    if epilogue == "int32":
        return acc.astype(np.int32)
    if epilogue == "dequant":
        return acc.astype(np.float32) * extra[0].reshape(1, -1, 1, 1)
    return R.requantize(acc, extra[0], shift, int(extra[1][0]))


def fused_reference(y, ins, layout, bias, relu, residual, quant_out):
    """The dequant output ``y`` (NCHW) through the fused epilogue, its inputs at the end of ``ins``
    (bias, residual in the output's layout (uint8: and res_q), out_q)."""
    k = len(ins) - (1 if quant_out else 0)
    nz = (2 if residual == "uint8" else 1) if residual else 0
    z = D.from_layout_data(ins[k - nz], layout) if residual else None
    if residual == "uint8":
        q = ins[k - 1]
        z = (z.astype(np.float32) - np.float32(q[1])) * np.float32(q[0])
    b = ins[k - 1 - nz] if bias else None
    y = finish_reference(y, b, relu, z) if bias or relu or residual else y
    return quantize_reference(y, ins[-1]) if quant_out else y


def _int_conv(variant, wl, act, weight, epilogue, layout, padding, ib, ob, shift, bias=False, relu=False,
              residual=False, quant_out=False, data_block=None, group_read=None) -> OpSpec:
    from tvm import te  # lazy: heavy (TVM)

    check_int(act, weight, epilogue, shift)
    ib, ob = blocks(wl, ib, ob)
    xb = data_block or ib
    group_read, dshape, wshape, hw = D.read_shapes(wl, layout, ib, ob, xb, group_read)
    X = te.placeholder(dshape, act, name="data")
    XZ_pad = te.placeholder((1,), "int32", name="x_zp")
    if weight == "int4":
        n = int(np.prod(wshape))
        Wt = te.placeholder(((n + 1) // 2,), "uint8", name="weight")
        strides = [int(np.prod(wshape[k + 1:])) for k in range(len(wshape))]

        def wread(*i):
            f = sum(ix * st for ix, st in zip(i, strides))
            nib = (Wt[f // 2].astype("int32") >> ((f % 2) * 4)) & 15
            return (nib ^ 8) - 8
    else:
        Wt = te.placeholder(wshape, STORAGE.get(weight, weight), name="weight")
        wread = lambda *i: Wt[i].astype("int32")  # noqa: E731
    read, _ = D.padded_reader(X, wl, hw, XZ_pad[0].astype(act), padding)
    acc = D.conv(wl, layout, read, wread, lambda a, b: a.astype("int32") * b, "int32", ib, ob, xb=xb,
                 group_read=group_read)
    out, extra = int_epilogue(acc, XZ_pad, layout, ob, wl.c_out, epilogue, shift, bias, relu, residual, quant_out)
    tensors = [X, Wt, XZ_pad, *extra, out]
    alo, ahi = ACTS[act]
    wlo, whi = WEIGHTS[weight]

    def make_inputs(rng):
        x = rng.integers(alo, ahi + 1, (wl.n, group_read[3] if group_read else wl.c_in, wl.h, wl.w)).astype(act)
        w = rng.integers(wlo, whi + 1, (wl.c_out, wl.c_in, wl.kh, wl.kw))
        wl_ = D.to_layout_weight(w, layout, ib, ob)
        wstore = R.pack_int4(wl_) if weight == "int4" else wl_.astype(STORAGE.get(weight, weight))
        zp = np.array([rng.integers(alo, ahi + 1) if act == "uint8" else 0], "int32")
        wsum = w.reshape(wl.c_out, -1).sum(1).astype("int32")
        return [D.to_layout_data(x, layout, xb), wstore, zp, wsum, *epilogue_inputs(rng, wl, epilogue),
                *([rng.uniform(-1, 1, wl.c_out).astype("float32")] if bias else []),
                *(residual_inputs(rng, wl, layout, ob, residual) if residual else []),
                *([quant_out_input(rng, wl.c_in * wl.kh * wl.kw)] if quant_out else [])]

    def reference(ins):
        x = D.from_layout_data(ins[0], layout)
        if weight == "int4":
            w = R.unpack_int4(ins[1], int(np.prod(wshape))).reshape(wshape)
        else:
            w = ins[1]
        w = D.from_layout_weight(w, layout, wl, ib, ob)
        if weight == "int7" and w.size and not (wlo <= int(w.min()) and int(w.max()) <= whi):
            raise TvmqError(f"int8w7 weights must lie in [{wlo}, {whi}] (7 bits), got [{int(w.min())}, "
                            f"{int(w.max())}]: halve or requantize them")
        zp = int(ins[2][0])
        acc = D.group_read_reference(lambda a, b: R.conv2d_nchw(a, b, wl, pad_value=zp, acc=np.int64), x, w, wl,
                                     group_read) if group_read else R.conv2d_nchw(x, w, wl, pad_value=zp, acc=np.int64)
        y = epilogue_reference(acc, zp, ins[3], epilogue, ins[4:], shift)
        y = fused_reference(y, ins, layout, bias, relu, residual, quant_out)
        return D.to_layout_out(y, layout, ob)

    return OpSpec(
        name=f"conv2d_{layout}_{variant}", variant=variant, layout=layout, workload=wl,
        params=dict(act=act, weight=weight, epilogue=epilogue, padding=padding, ib=ib, ob=ob, shift=shift,
                    **({"bias": bias, "relu": relu} if bias or relu else {}),
                    **({"residual": residual} if residual else {}), **({"quant_out": True} if quant_out else {}),
                    **data_block_param(ib, xb), **({"group_read": list(group_read)} if group_read else {})),
        tensors=tensors, make_inputs=make_inputs, reference=reference, atol=1e-3, rtol=1e-5,
        int_tol=1 if quant_out else 0,
    )


@register("int8")
def conv2d_int8(wl, act="uint8", epilogue="requant", layout="nchwc", padding="hard", ib=None, ob=None, shift=30,
                tiles=None, bias=False, relu=False, residual=False, quant_out=False, data_block=None, group_read=None):
    """uint8/int8 activations x int8 weights, int32 accumulation, requantized to int8 by default.
    ``residual``: True (float32) or ``"uint8"`` (with ``res_q``), for the dequant epilogue.
    ``layout="amx"``: Intel AMX tiles, ``tiles=(rows, m_tiles, n_tiles)`` (see ``tvmq.ops.amx_int8``).
    ``data_block``: the data's channel block when it is not ``ib`` (a model's previous kernel wrote it).
    ``group_read``: (groups, base, stride, channels), a grouped conv in one call (``direct.check_group_read``)."""
    if layout == "amx":
        if data_block or group_read:
            raise TvmqError("the AMX int8 kernel reads its data in its own layout only (no data_block)")
        if quant_out or residual == "uint8":  # the tile kernel's epilogue is hand-written TIR without them
            raise TvmqError("the AMX int8 kernel has no uint8 output or uint8 residual")
        if residual:
            return amx_residual_conv(wl, act, epilogue, padding, shift, tiles, bias, relu)
        return amx_conv(wl, act, epilogue, padding, shift, tiles, bias, relu)
    return _int_conv("int8", wl, act, "int8", epilogue, layout, padding, ib, ob, shift, bias, relu, residual,
                     quant_out, data_block, group_read)


@register("int8w7")
def conv2d_int8w7(wl, act="uint8", epilogue="requant", layout="nchwc", padding="hard", ib=None, ob=None, shift=30):
    """uint8 activations x 7-bit weights (int8 storage, values in [-64, 63]): the int8 kernel whose
    pairwise products fit int16, so AVX-512BW's vpmaddubsw computes it exactly without VNNI."""
    return _int_conv("int8w7", wl, act, "int7", epilogue, layout, padding, ib, ob, shift)


@register("int16")
def conv2d_int16(wl, epilogue="dequant", layout="nchwc", padding="hard", ib=None, ob=None, shift=30):
    """int16 x int16 with int32 accumulation (values kept within +-256 so sums fit int32)."""
    return _int_conv("int16", wl, "int16", "int16", epilogue, layout, padding, ib, ob, shift)


@register("int4")
def conv2d_int4(wl, act="uint8", epilogue="requant", layout="nchwc", padding="hard", ib=None, ob=None, shift=30):
    """uint8 activations x int4 weights packed two per byte."""
    return _int_conv("int4", wl, act, "int4", epilogue, layout, padding, ib, ob, shift)
