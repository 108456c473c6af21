"""The direct-convolution compute shared by every variant and layout.

Variants differ only in how a weight is read (float, codebook lookup,
integer) and in the multiply's dtype; layouts only in index order. Keeping
one compute means one schedule template serves them all.
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from ..workload import ConvWorkload
from . import reference as R


LAYOUTS = ("nchw", "nhwc", "nchwc", "nchwc_vnni")


def check_blocks(wl: ConvWorkload, ib: int, ob: int):
    if wl.c_in % ib:
        raise TvmqError(f"layout nchwc: input-channel block ib={ib} does not divide c_in={wl.c_in}")
    if wl.c_out % ob:
        raise TvmqError(f"layout nchwc: output-channel block ob={ob} does not divide c_out={wl.c_out}")


def check_data_block(wl: ConvWorkload, ib: int, xb: int):
    if wl.c_in % xb or (xb % ib and ib % xb):
        raise TvmqError(f"data block {xb} must divide c_in={wl.c_in} and be a multiple or divisor of ib={ib}")


def shapes(wl: ConvWorkload, layout: str, ib: int = 1, ob: int = 1, xb: int | None = None):
    """(data shape, weight shape, output shape, (h axis, w axis)) for a layout; ``xb``: the data's
    channel block where it differs from the reduction's ``ib`` (blocked layouts)."""
    n, c, h, w, o, kh, kw = wl.n, wl.c_in, wl.h, wl.w, wl.c_out, wl.kh, wl.kw
    ho, wo = wl.out_h, wl.out_w
    if xb and xb != ib and layout.startswith("nchwc"):
        check_data_block(wl, ib, xb)
        _, ws, os_, hw = shapes(wl, layout, ib, ob)
        return (n, c // xb, h, w, xb), ws, os_, hw
    if layout == "nchw":
        return (n, c, h, w), (o, c, kh, kw), (n, o, ho, wo), (2, 3)
    if layout == "nhwc":
        return (n, h, w, c), (kh, kw, c, o), (n, ho, wo, o), (1, 2)
    if layout == "nchwc":
        check_blocks(wl, ib, ob)
        return (n, c // ib, h, w, ib), (o // ob, c // ib, kh, kw, ib, ob), (n, o // ob, ho, wo, ob), (2, 3)
    if layout == "nchwc_vnni":  # weights OIHW16o4i: one 64-byte VNNI operand per (oo, co, r, s)
        check_blocks(wl, ib, ob)
        return (n, c // ib, h, w, ib), (o // ob, c // ib, kh, kw, ob, ib), (n, o // ob, ho, wo, ob), (2, 3)
    raise TvmqError(f"unknown layout {layout!r}; valid layouts are {list(LAYOUTS)}")


def check_group_read(wl: ConvWorkload, layout: str, ib: int, ob: int, xb: int, group_read) -> tuple:
    """``group_read`` = (groups, base, stride, channels), checked: output channel o of group
    g = o // (c_out / groups) reads input channel c at data channel base + g * stride + c of data with
    ``channels`` channels (NCHW{xb}c): a grouped convolution in one call, its groups' inputs placed by
    their producer."""
    g, base, stride, chans = (int(v) for v in group_read)
    if not layout.startswith("nchwc"):
        raise TvmqError(f"group_read: layout {layout!r} is not blocked (nchwc)")
    check_blocks(wl, ib, ob)
    if g < 1 or wl.c_out % g or (wl.c_out // g) % ob:
        raise TvmqError(f"group_read: {g} groups of c_out={wl.c_out} are not whole output blocks of {ob}")
    if base % ib or stride % ib or xb % ib or chans % xb:
        raise TvmqError(f"group_read: base {base}, stride {stride} and data block {xb} must be multiples of ib={ib}, "
                        f"and {xb} divide the data's {chans} channels")
    if base + (g - 1) * stride + wl.c_in > chans:
        raise TvmqError(f"group_read: the last group reads channels up to {base + (g - 1) * stride + wl.c_in}, "
                        f"the data has {chans}")
    return g, base, stride, chans


def read_shapes(wl: ConvWorkload, layout: str, ib: int, ob: int, xb: int, group_read=None):
    """(checked group_read or None, data shape, weight shape, (h axis, w axis)): ``shapes``, the data
    holding all of ``group_read``'s channels (NCHW{xb}c) where there is one."""
    if not group_read:
        dshape, wshape, _, hw = shapes(wl, layout, ib, ob, xb)
        return None, dshape, wshape, hw
    group_read = check_group_read(wl, layout, ib, ob, xb, group_read)
    _, wshape, _, hw = shapes(wl, layout, ib, ob)
    return group_read, (wl.n, group_read[3] // xb, wl.h, wl.w, xb), wshape, hw


def padded_reader(data, wl: ConvWorkload, hw_axes, pad_value, padding: str):
    """Return ``D(*idx)`` reading the input at padded coordinates.

    ``hard`` materialises a pad stage (a separate block the schedule may
    inline); ``soft`` bounds-checks inside the convolution itself.
    """
    from tvm import te, tirx  # lazy: heavy (TVM)

    top, left, bottom, right = wl.pad
    ha, wa = hw_axes
    no_pad = not any(wl.pad)

    def cond_and_src(idx):
        idx = list(idx)
        y, x = idx[ha], idx[wa]
        conds = []
        if top:
            conds.append(y >= top)
        if bottom:
            conds.append(y < wl.h + top)
        if left:
            conds.append(x >= left)
        if right:
            conds.append(x < wl.w + left)
        idx[ha], idx[wa] = y - top, x - left
        return tirx.all(*conds), idx

    def pv(dtype):
        return pad_value if not isinstance(pad_value, (int, float)) else tirx.const(pad_value, dtype)

    if no_pad:
        return lambda *idx: data[idx], None
    if padding == "soft":

        def read(*idx):
            cond, src = cond_and_src(idx)
            return tirx.if_then_else(cond, data[tuple(src)], pv(data.dtype))

        return read, None
    if padding != "hard":
        raise TvmqError(f"unknown padding {padding!r}; valid values are ['hard', 'soft']")
    pshape = list(data.shape)
    pshape[ha] = wl.h + top + bottom
    pshape[wa] = wl.w + left + right

    def fpad(*idx):
        cond, src = cond_and_src(idx)
        return tirx.if_then_else(cond, data[tuple(src)], pv(data.dtype))

    padded = te.compute(pshape, fpad, name="pad")
    return lambda *idx: padded[idx], padded


def blocked_read(read, ib: int, xb: int):
    """``read`` of NCHW{xb}c data indexed as NCHW{ib}c (reduction block, lane): a kernel reads the block
    its producer wrote, so no layout change runs between them."""
    if xb % ib == 0:
        k = xb // ib
        return lambda n, co, y, x, ci: read(n, co // k, y, x, co % k * ib + ci)
    k = ib // xb
    return lambda n, co, y, x, ci: read(n, co * k + ci // xb, y, x, ci % xb)


def conv(wl: ConvWorkload, layout: str, read, weight, mul, acc_dtype: str, ib: int = 1, ob: int = 1, name="conv",
         xb: int | None = None, chan=None, group_read=None):
    """The convolution block: ``sum(mul(read(...), weight(...)))`` in ``acc_dtype``; ``xb``: the data's
    channel block where it is not ``ib`` (``shapes``). ``chan(n, oo, c, y, x)`` (nchwc): the flat index
    of the data element that output block ``oo`` reads as input channel ``c`` at (y, x), ``read`` then
    taking one flat index (a gathered grouped conv). ``group_read`` (nchwc): ``check_group_read``'s
    groups, each read at its own channel offset."""
    from tvm import te  # lazy: heavy (TVM)

    _, _, oshape, _ = shapes(wl, layout, ib, ob)
    sh, sw = wl.stride
    r = te.reduce_axis((0, wl.kh), name="r")
    s = te.reduce_axis((0, wl.kw), name="s")
    if layout == "nchw":
        c = te.reduce_axis((0, wl.c_in), name="c")
        f = lambda n, o, y, x: te.sum(  # noqa: E731
            mul(read(n, c, y * sh + r, x * sw + s), weight(o, c, r, s)).astype(acc_dtype), axis=[c, r, s]
        )
    elif layout == "nhwc":
        c = te.reduce_axis((0, wl.c_in), name="c")
        f = lambda n, y, x, o: te.sum(  # noqa: E731
            mul(read(n, y * sh + r, x * sw + s, c), weight(r, s, c, o)).astype(acc_dtype), axis=[r, s, c]
        )
    else:
        if chan is not None:
            raw = read
            read = None
        elif group_read is not None:
            g, base, stride, _ = (int(v) for v in group_read)
            opb, k, raw = wl.c_out // g // ob, (xb or ib) // ib, read  # output blocks per group, ib-blocks per xb

            def read(n, oo, co, y, x, ci):
                q = (base + oo // opb * stride) // ib + co  # the ib-block of the data this (oo, co) reads
                return raw(n, q // k, y, x, q % k * ib + ci) if k > 1 else raw(n, q, y, x, ci)
        elif xb and xb != ib:
            read = blocked_read(read, ib, xb)
        co = te.reduce_axis((0, wl.c_in // ib), name="co")
        ci = te.reduce_axis((0, ib), name="ci")
        if layout == "nchwc":
            wt = lambda oo, oi: weight(oo, co, r, s, ci, oi)  # noqa: E731
        else:
            wt = lambda oo, oi: weight(oo, co, r, s, oi, ci)  # noqa: E731
        if chan is not None:
            def read_at(n, oo, y, x):
                return raw(chan(n, oo, co * ib + ci, y, x))
        elif group_read is not None:
            def read_at(n, oo, y, x):
                return read(n, oo, co, y, x, ci)
        else:
            def read_at(n, oo, y, x):
                return read(n, co, y, x, ci)
        f = lambda n, oo, y, x, oi: te.sum(  # noqa: E731
            mul(read_at(n, oo, y * sh + r, x * sw + s), wt(oo, oi)).astype(acc_dtype), axis=[co, r, s, ci],
        )
    return te.compute(oshape, f, name=name)


def group_read_reference(conv_nchw, x, w, wl: ConvWorkload, group_read):
    """numpy: ``conv_nchw(data, weights)`` per group of ``group_read`` on data ``x`` (NCHW, all its
    channels) and OIHW weights ``w``, concatenated on the output channels."""
    g, base, stride, _ = (int(v) for v in group_read)
    opg = wl.c_out // g
    return np.concatenate([conv_nchw(x[:, base + k * stride: base + k * stride + wl.c_in], w[k * opg:(k + 1) * opg])
                           for k in range(g)], axis=1)


# -- numpy side of the layouts --------------------------------------------
def to_layout_data(x_nchw, layout, ib=1):

    return {"nchw": lambda: x_nchw, "nhwc": lambda: R.nchw_to_nhwc(x_nchw),
            "nchwc": lambda: R.nchw_to_nchwc(x_nchw, ib), "nchwc_vnni": lambda: R.nchw_to_nchwc(x_nchw, ib),
            "amx": lambda: R.nchw_to_nchwc(x_nchw, ib)}[layout]()


def to_layout_weight(w_oihw, layout, ib=1, ob=1):

    return {"nchw": lambda: w_oihw, "nhwc": lambda: R.oihw_to_hwio(w_oihw),
            "nchwc": lambda: R.oihw_to_packed(w_oihw, ib, ob),
            "nchwc_vnni": lambda: R.oihw_to_packed(w_oihw, ib, ob).swapaxes(4, 5).copy(),
            # the AMX kernels (tvmq.templates.amx): int8 here, bf16 bits with "amx_bf16"
            "amx": lambda: to_amx_tiles(w_oihw, 4), "amx_bf16": lambda: to_amx_tiles(w_oihw, 2)}[layout]()


def to_amx_tiles(w_oihw, g: int):
    """OIHW weights as AMX B tiles [O/16][CP/16g][Kh][Kw][16][16][g]: channels zero-padded to CP = 16g k,
    each tile 16 groups of ``g`` channels (4 int8, 2 bf16) x 16 output channels, contiguous."""
    w = pad_channels(w_oihw, 16 * g)
    o, cp, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(o // 16, 16, cp // (16 * g), 16, g, kh, kw).transpose(0, 2, 5, 6, 3, 1, 4))


def pad_channels(w_oihw, k: int):
    """OIHW weights with input channels zero-padded to a multiple of ``k``."""
    c = w_oihw.shape[1]
    return np.pad(w_oihw, [(0, 0), (0, -c % k), (0, 0), (0, 0)]) if c % k else w_oihw


def from_layout_weight(w, layout, wl: ConvWorkload, ib=1, ob=1):
    """Any weight layout back to OIHW."""
    if layout == "nchw":
        return w
    if layout == "nhwc":
        return w.transpose(3, 2, 0, 1)
    if layout in ("amx", "amx_bf16"):  # [O/16][CB][Kh][Kw][16][16][g] -> OIHW
        oo, cb, kh, kw, kg, oi, g = w.shape
        return w.transpose(0, 5, 1, 4, 6, 2, 3).reshape(oo * oi, cb * kg * g, kh, kw)[:, :wl.c_in]
    if layout == "nchwc_vnni":
        w = w.swapaxes(4, 5)
    oo, co, kh, kw, ci, oi = w.shape
    return w.transpose(0, 5, 1, 4, 2, 3).reshape(oo * oi, co * ci, kh, kw)[:, :wl.c_in]


def from_layout_data(x, layout):

    if layout.startswith("nchwc") or layout == "amx":
        return R.nchwc_to_nchw(x)
    return {"nchw": lambda: x, "nhwc": lambda: R.nhwc_to_nchw(x)}[layout]()


def to_layout_out(y_nchw, layout, ob=1):
    return to_layout_data(y_nchw, layout, ob)
