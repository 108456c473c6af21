"""Numpy references for every operator, and the layout packing they share.

References compute in float64 (float paths) or int64 (integer paths) so they
are exact enough to judge a kernel.
"""

from __future__ import annotations

import numpy as np

from ..workload import ConvWorkload


def pad_nchw(x: np.ndarray, wl: ConvWorkload, value=0) -> np.ndarray:
    t, l, b, r = wl.pad
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def windows_nchw(x: np.ndarray, wl: ConvWorkload, pad_value=0) -> np.ndarray:
    """Sliding windows of the padded input: shape (N, C, Ho, Wo, Kh, Kw)."""
    xp = pad_nchw(x, wl, pad_value)
    v = np.lib.stride_tricks.sliding_window_view(xp, (wl.kh, wl.kw), axis=(2, 3))
    sh, sw = wl.stride
    return v[:, :, ::sh, ::sw][:, :, : wl.out_h, : wl.out_w]


def conv2d_nchw(x: np.ndarray, w: np.ndarray, wl: ConvWorkload, pad_value=0, acc=np.float64) -> np.ndarray:
    """Direct convolution, NCHW data and OIHW weights, accumulated in ``acc``.

    Integer accumulation runs through float64 BLAS when every partial sum is below 2**53
    (then float64 is exact, and about 50x faster than an int64 einsum).
    """
    if np.issubdtype(acc, np.integer):
        bound = float(max(np.abs(x).max(initial=0), abs(pad_value))) * float(np.abs(w).max(initial=0))
        if bound * wl.c_in * wl.kh * wl.kw < 2.0**53:
            return np.rint(conv2d_nchw(x, w, wl, pad_value, np.float64)).astype(acc)
    win = windows_nchw(x.astype(acc), wl, pad_value)
    return np.einsum("nchwrs,ocrs->nohw", win, w.astype(acc), optimize=True)



def conv2d_grouped_nchw(x: np.ndarray, w: np.ndarray, wl: ConvWorkload, pad_value=0, acc=np.float64) -> np.ndarray:
    """Grouped convolution: NCHW data, weights (C_out, C_in / groups, Kh, Kw); output channel o reads the
    input channels of its group o // (C_out / groups). Depthwise is groups == C_in == C_out."""
    g, ipg, opg = wl.groups, wl.c_in // wl.groups, wl.c_out // wl.groups
    win = windows_nchw(x.astype(acc), wl, pad_value)  # N C Ho Wo Kh Kw
    n, _, ho, wo, kh, kw = win.shape
    win = win.reshape(n, g, ipg, ho, wo, kh, kw)
    wg = w.astype(acc).reshape(g, opg, ipg, kh, kw)
    y = np.einsum("ngchwrs,gocrs->ngohw", win, wg, optimize=True)
    return y.reshape(n, wl.c_out, ho, wo)

# -- layouts -------------------------------------------------------------
def nchw_to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def oihw_to_hwio(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def nchw_to_nchwc(x, cb: int):
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // cb, cb, h, w).transpose(0, 1, 3, 4, 2))


def nchwc_to_nchw(x):
    n, co, h, w, cb = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, co * cb, h, w))


def oihw_to_packed(w, ib: int, ob: int):
    """OIHW -> [O/ob][I/ib][Kh][Kw][ib][ob] (output channels innermost)."""
    o, i, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(o // ob, ob, i // ib, ib, kh, kw).transpose(0, 2, 4, 5, 3, 1))


# -- sub-byte packing ----------------------------------------------------
def pack_bits(codes: np.ndarray, bits: int, planar: int = 0) -> np.ndarray:
    """Pack unsigned codes (< 2**bits) of a flattened array into uint8, low bits first.

    ``planar=0``: consecutive codes share a byte. ``planar=L``: codes go in groups of L * (8 // bits);
    byte i of a group's L bytes holds codes i, i + L, i + 2L, ... (so L consecutive codes come from
    L consecutive bytes with one shift: a vector load instead of a gather).
    """
    assert bits in (1, 2, 4)
    per = 8 // bits
    flat = codes.astype(np.uint8).ravel()
    group = per * (planar or 1)
    flat = np.concatenate([flat, np.zeros((-len(flat)) % group, np.uint8)])
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    if planar:
        g = flat.reshape(-1, per, planar) << shifts[None, :, None]
        return np.bitwise_or.reduce(g, axis=1).astype(np.uint8).ravel()
    return np.bitwise_or.reduce(flat.reshape(-1, per) << shifts, axis=1).astype(np.uint8)


def unpack_bits(packed: np.ndarray, bits: int, count: int, planar: int = 0) -> np.ndarray:
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    mask = (1 << bits) - 1
    if planar and len(packed) % planar:
        raise ValueError(f"{len(packed)} packed bytes are not whole groups of planar={planar}")
    if planar:
        codes = (packed.reshape(-1, 1, planar) >> shifts[None, :, None]) & mask
    else:
        codes = (packed[:, None] >> shifts) & mask
    return codes.ravel()[:count].astype(np.uint8)


def pack_int4(w: np.ndarray) -> np.ndarray:
    """Signed int4 values (-8..7), two per byte, low nibble first."""
    return pack_bits((w.astype(np.int16) & 0xF).astype(np.uint8), 4)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    u = unpack_bits(packed, 4, count).astype(np.int16)
    return ((u ^ 8) - 8).astype(np.int8)


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: int, zp_out: int, axis_c: int = 1) -> np.ndarray:
    """Fixed-point requantize: ((acc * M + 2**(shift-1)) >> shift) + zp, saturated to int8."""
    shape = [1] * acc.ndim
    shape[axis_c] = -1
    m = multiplier.astype(np.int64).reshape(shape)
    v = (acc.astype(np.int64) * m + (1 << (shift - 1))) >> shift
    return np.clip(v + zp_out, -128, 127).astype(np.int8)
