"""The int8 convolution computed by Intel AMX tiles (``tvmq.templates.amx``), as an ``OpSpec``.

``conv2d_int8(..., layout="amx", tiles=(rows, m_tiles, n_tiles, flat))`` builds it: uint8 activations
[N][C/B][H][W][B] (B = 64, or ``params["ib"]`` where 64 does not divide C), int8 weights in the VNNI layout [O/16][C/4][Kh][Kw][16][4], the output
[N][O/16][Ho][Wo][16]: requantized int8 (``epilogue="requant"``), or float32 (``"dequant"``, with an
optional fused bias and ReLU, as a model export calls it). The kernel is written directly in TIR (tile instructions, not
a schedule), so ``prim_func`` returns it and the template applies no schedule to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TvmqError
from .base import OpSpec


@dataclass
class AmxOpSpec(OpSpec):
    """An ``OpSpec`` whose PrimFunc is tvmq's AMX kernel (``tensors`` only name its arguments)."""

    tiles: tuple = (16, 1, 2, 0)

    def prim_func(self):
        from ..templates.amx_int8 import conv2d_amx_int8, conv2d_amx_int8_dequant  # op <-> template cycle

        rows, m_tiles, n_tiles, flat = self.tiles
        if self.params["epilogue"] == "dequant":
            return conv2d_amx_int8_dequant(self.workload, rows, m_tiles, n_tiles, bool(flat),
                                           bias=self.params.get("bias", False), relu=self.params.get("relu", False),
                                           residual=self.params.get("residual", False))
        return conv2d_amx_int8(self.workload, rows, m_tiles, n_tiles, shift=self.params["shift"], flat=bool(flat))


def amx_conv(wl, act: str, epilogue: str, padding: str, shift: int, tiles, bias: bool = False,
             relu=False) -> AmxOpSpec:
    from tvm import te  # lazy: heavy (TVM)

    from ..templates import amx, amx_int8  # op <-> template cycle
    from .float import finish_reference  # lazy: ops.integer imports this module

    if act != "uint8" or epilogue not in ("requant", "dequant") or padding != "hard":
        raise TvmqError(f"the AMX int8 kernel computes uint8 activations with the requant or dequant epilogue "
                        f"and hard padding, got act={act!r}, epilogue={epilogue!r}, padding={padding!r}")
    if (bias or relu) and epilogue != "dequant":
        raise TvmqError(f"a fused bias/ReLU needs the dequant epilogue (float output), not {epilogue!r}")
    if tiles is None or len(tiles) != 4:
        raise TvmqError(f"layout 'amx' needs tiles=(rows, m_tiles, n_tiles, flat), got {tiles!r}")
    tiles = tuple(int(t) for t in tiles)
    why = amx.check(wl, *tiles[:3], flat=bool(tiles[3]))
    if why:  # e.g. the flat kernel on a strided layer, which the space's constraints cannot see
        from ..templates.common import InvalidConfig  # op <-> template cycle

        raise InvalidConfig(why)
    dshape, wshape, oshape = amx.shapes(wl)
    head = [("data", dshape, "uint8"), ("weight", wshape, "int8"), ("x_zp", (1,), "int32"),
            ("wsum", (wl.c_out,), "int32")]
    if epilogue == "requant":
        shapes = head + [("multiplier", (wl.c_out,), "int32"), ("y_zp", (1,), "int32"), ("requant", oshape, "int8")]
        make_inputs, reference = (lambda rng: amx_int8.make_inputs(wl, rng)), (lambda ins: amx_int8.reference(wl, ins, shift))
    else:
        shapes = head + [("scale", (wl.c_out,), "float32"), *([("bias", (wl.c_out,), "float32")] if bias else []),
                         ("dequant", oshape, "float32")]

        def make_inputs(rng):
            ins = amx_int8.make_inputs(wl, rng, "dequant")
            return ins + ([rng.uniform(-1, 1, wl.c_out).astype("float32")] if bias else [])

        def reference(ins):
            y = amx_int8.reference(wl, ins[:5], shift, "dequant", layout_out=False)
            y = finish_reference(y, ins[5] if bias else None, relu)
            return amx_int8.to_amx_out(y)
    return AmxOpSpec(
        name="conv2d_amx_int8", variant="int8", layout="amx", workload=wl,
        params=dict(act=act, weight="int8", epilogue=epilogue, padding=padding, ib=amx.data_block(wl.c_in), ob=16,
                    shift=shift, tiles=list(tiles), **({"bias": bias, "relu": relu} if bias or relu else {})),
        tensors=[te.placeholder(s, d, name=n) for n, s, d in shapes],
        make_inputs=make_inputs, reference=reference, tiles=tiles,
        **({"atol": 1e-3, "rtol": 1e-5} if epilogue == "dequant" else {}),
    )
