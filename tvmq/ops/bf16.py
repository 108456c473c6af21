"""bfloat16 direct convolution: ``conv2d_{nchw,nhwc,nchwc}_bf16`` and ``conv2d_amx_bf16``.

Activations and weights are bf16, held as their uint16 bits (numpy has no bfloat16); products are
accumulated and returned in float32. Without AMX each bf16 value widens exactly to float32 (its
bits shifted up 16) and the float schedule applies unchanged; with ``layout="amx"`` AMX-BF16 tiles
(``tdpbf16ps``, :mod:`tvmq.templates.amx_bf16`) compute it. The reference is the float64
convolution of the bf16-rounded inputs, so the only error checked is float32 accumulation; the
error against float inputs is bf16 rounding, reported by ``error_vs_float``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TvmqError
from . import reference as R
from .base import OpSpec, register
from .float import float_like_conv, float_tolerance
from ..templates import amx_bf16
from ..templates.amx_bf16 import from_bf16_bits, to_bf16_bits
from ..templates import amx
from ..templates.common import InvalidConfig


@dataclass
class AmxBf16OpSpec(OpSpec):
    """An ``OpSpec`` whose PrimFunc is tvmq's AMX-BF16 kernel (``tensors`` only name its arguments)."""

    tiles: tuple = (16, 1, 2, 0)

    def prim_func(self):
        rows, m_tiles, n_tiles, flat = self.tiles
        return amx_bf16.conv2d_amx_bf16(self.workload, rows, m_tiles, n_tiles, flat=bool(flat))


def _amx(wl, tiles) -> AmxBf16OpSpec:
    from tvm import te  # lazy: heavy (TVM)


    if tiles is None or len(tiles) != 4:
        raise TvmqError(f"layout 'amx' needs tiles=(rows, m_tiles, n_tiles, flat), got {tiles!r}")
    tiles = tuple(int(t) for t in tiles)
    why = amx.check(wl, *tiles[:3], flat=bool(tiles[3]), kind="bf16")
    if why:
        raise InvalidConfig(why)
    p = amx.kernel_parts(wl, *tiles[:3], bool(tiles[3]), "bf16")
    shapes = [("data", p.dshape, "uint16"), ("weight", p.wshape, "uint16"), ("out", p.oshape, "float32")]
    atol, rtol = float_tolerance(wl)
    return AmxBf16OpSpec(
        name="conv2d_amx_bf16", variant="bf16", layout="amx", workload=wl,
        params=dict(padding="hard", ib=amx.data_block(wl.c_in, "bf16"), ob=16, tiles=list(tiles)),
        tensors=[te.placeholder(s, d, name=n) for n, s, d in shapes],
        make_inputs=lambda rng: amx_bf16.make_inputs(wl, rng), reference=lambda ins: amx_bf16.reference(wl, ins),
        atol=atol, rtol=rtol, tiles=tiles,
    )


def _widen(v):
    """bf16 bits -> the float32 they denote (exact)."""
    from tvm import tirx  # lazy: heavy (TVM)

    return tirx.reinterpret("float32", v.astype("uint32") << tirx.const(16, "uint32"))


@register("bf16")
def conv2d_bf16(wl, layout="nchwc", padding="hard", ib=None, ob=None, bias=False, relu=False,
                tiles=None) -> OpSpec:
    """bf16 x bf16 -> float32 direct convolution (``layout="amx"``: on AMX-BF16 tiles)."""
    if layout == "amx":
        if bias or relu or padding != "hard":
            raise TvmqError("the AMX bf16 kernel has no epilogue and pads hard")
        return _amx(wl, tiles)
    return float_like_conv(wl, "bf16", layout, padding, ib, ob, bias, relu, storage="uint16", widen=_widen,
                           encode=to_bf16_bits, decode=from_bf16_bits)


def error_vs_float(wl, seed: int = 0) -> dict:
    """bf16's error against the float32 convolution of the unrounded inputs (what a user of bf16 loses):
    max and mean absolute error relative to max |y|, on seeded inputs of the float peers' scale."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((wl.n, wl.c_in, wl.h, wl.w)).astype(np.float32)
    w = (rng.standard_normal((wl.c_out, wl.c_in, wl.kh, wl.kw)) / np.sqrt(wl.c_in * wl.kh * wl.kw)).astype(np.float32)
    y = R.conv2d_nchw(x, w, wl)
    yb = R.conv2d_nchw(from_bf16_bits(to_bf16_bits(x)), from_bf16_bits(to_bf16_bits(w)), wl)
    scale = float(np.max(np.abs(y))) or 1.0
    d = np.abs(yb - y) / scale
    return {"max_rel_err": float(d.max()), "mean_rel_err": float(d.mean())}
