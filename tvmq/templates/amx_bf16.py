"""bf16 convolution on Intel AMX tiles (``tdpbf16ps``, float32 accumulation and output).

Layouts (bf16 values held as their uint16 bits, numpy having no bfloat16): data
[N][C/B][H][W][B] (B = 32 where it divides C, see :func:`tvmq.templates.amx.data_block`), weight
[O/16][CP/32][Kh][Kw][16][16][2] over C zero-padded to CP = 32k (layout ``amx_bf16``: one B tile, 16
channel pairs x 16 output channels, contiguous), output [N][O/16][Ho][Wo][16] float32. The tiling is the
int8 kernel's (:func:`tvmq.templates.amx.kernel_parts`); padding is bf16 zero.
"""

from __future__ import annotations

import numpy as np

from . import amx


def conv2d_amx_bf16(wl, rows: int = 16, m_tiles: int = 1, n_tiles: int = 2, flat: bool = False):
    """The PrimFunc ``main(data, weight, out)``."""
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    p = amx.kernel_parts(wl, rows, m_tiles, n_tiles, flat, "bf16")
    fill_pad, run_tasks, O = p.fill_pad, p.run_tasks, wl.c_out

    @T.macro
    def store(acc, j, x, n, ob, y, xo, out):
        for oi in T.vectorized(16):
            out[n, ob, y, xo, oi] = acc[j, x, oi]

    @T.prim_func(s_tir=True)
    def main(data: T.Buffer(p.dshape, "uint16"), weight: T.Buffer(p.wshape, "uint16"),
             out: T.Buffer(p.oshape, "float32")):
        T.func_attr({"global_symbol": "main", "tir.noalias": True})
        pad = T.alloc_buffer(p.pad_shape, "uint16")
        fill_pad(data, pad, T.uint16(0))
        zero = T.alloc_buffer((O,), "float32")  # the accumulators start at 0
        for o in range(O):
            zero[o] = T.float32(0)
        run_tasks(pad, weight, zero, store, out)

    return main


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits (uint16), rounded to nearest even."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16_bits(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def make_inputs(wl, rng):
    """Random bf16 data and weights (as bits) in the kernel's layouts."""
    from ..ops import direct as D  # ops <-> templates cycle
    from ..ops import reference as R  # ops <-> templates cycle

    x = rng.standard_normal((wl.n, wl.c_in, wl.h, wl.w)).astype(np.float32)
    w = rng.standard_normal((wl.c_out, wl.c_in, wl.kh, wl.kw)).astype(np.float32)
    return [R.nchw_to_nchwc(to_bf16_bits(x), amx.data_block(wl.c_in, "bf16")),
            D.to_layout_weight(to_bf16_bits(w), "amx_bf16")]


def reference(wl, ins):
    """The exact (float64) convolution of the bf16 inputs, [N][O/16][Ho][Wo][16]."""
    from ..ops import direct as D  # ops <-> templates cycle
    from ..ops import reference as R  # ops <-> templates cycle

    x = from_bf16_bits(R.nchwc_to_nchw(ins[0]))
    w = from_bf16_bits(D.from_layout_weight(ins[1], "amx_bf16", wl))
    return R.nchw_to_nchwc(R.conv2d_nchw(x, w, wl), 16)
