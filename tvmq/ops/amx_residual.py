"""The AMX int8 dequant kernel with a fused residual add: ``(acc - x_zp * wsum) * scale + bias +
residual``, then ReLU, the residual a float32 tensor in the output's layout [N][O/16][Ho][Wo][16].

It wraps :func:`tvmq.ops.amx_int8.amx_conv` (same checks, shapes and tiling) rather than changing it:
one more kernel argument before the output, ``params["residual"]`` (the template's
``conv2d_amx_int8_dequant(residual=True)``), and a reference that adds it before the ReLU.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import TvmqError
from .amx_int8 import AmxOpSpec, amx_conv


def amx_residual_conv(wl, act: str, epilogue: str, padding: str, shift: int, tiles, bias: bool = False,
                      relu=False) -> AmxOpSpec:
    """``amx_conv(..., epilogue="dequant", bias, relu)`` with a residual argument before the output."""
    from tvm import te  # lazy: heavy (TVM)

    from .float import finish_reference, residual_input  # lazy: ops.integer imports this module

    if epilogue != "dequant":
        raise TvmqError(f"a fused residual needs the dequant epilogue (float output), not {epilogue!r}")
    base = amx_conv(wl, act, epilogue, padding, shift, tiles, bias, False)  # no ReLU: it follows the add
    out = base.tensors[-1]
    res = te.placeholder(out.shape, "float32", name="residual")
    ob = base.params["ob"]

    def make_inputs(rng):
        return base.make_inputs(rng) + [residual_input(rng, wl, "amx", ob)]

    def reference(ins):  # elementwise after the dequant: in the blocked layout as it is
        return finish_reference(base.reference(ins[:-1]), None, relu, ins[-1])

    params = {**base.params, "bias": bias, "relu": relu, "residual": True}  # AmxOpSpec.prim_func reads them
    return replace(base, params=params, tensors=[*base.tensors[:-1], res, out], make_inputs=make_inputs,
                   reference=reference)
