"""uint8 activations between the kernels of an integer model export, in Relax: the quantize before a
kernel that reads them, the ``out_q`` input of a kernel that writes them for the next layer (its
epilogue quantizes, so no pass between), and the float twin of such an output; and the int8 weights
and per-channel weight scales those kernels take."""

from __future__ import annotations

import numpy as np


def quantize(bb, x, scale: float, zero_point: float):
    """float32 -> uint8 activations: ``clip(round(x * (1 / scale)) + zero_point, 0, 255)``; the kernels'
    ``quant_out`` epilogue (``tvmq.ops.integer.quantize_u8``) computes the same, in the same order."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    xs = bb.emit(R.round(R.multiply(x, relax.const(np.float32(1.0 / scale)))))
    return bb.emit(R.astype(R.clip(R.add(xs, relax.const(np.float32(zero_point))), 0.0, 255.0), "uint8"))


def out_q_array(scale: float, zero_point: float) -> np.ndarray:
    """A kernel's ``out_q`` input: ``quantize``'s constants, ``[1 / scale, zero point]``."""
    return np.array([np.float32(1.0 / scale), zero_point], np.float32)


def channel_scales(w_scale, n: int) -> np.ndarray:
    """``n`` float32 weight scales, one per output channel, from one per channel or one for all."""
    return np.broadcast_to(np.asarray(w_scale, np.float32).reshape(-1), (n,))


def int8_weights(quant: dict, quantize: str) -> np.ndarray:
    """A layer's int8 weights: ``q`` (int8), or the codebook decoded at ``indices`` (kmeans_int8)."""
    return np.asarray(quant["q"] if quantize == "int8" else np.asarray(quant["codebook"])[quant["indices"]], np.int8)


def dequantize(bb, y, scale: float, zero_point: float):
    """uint8 activations back to float32 (the twin of a quantized output; unused ones go to DCE)."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    return bb.emit(R.multiply(R.subtract(R.astype(y, "float32"), relax.const(np.float32(zero_point))),
                              relax.const(np.float32(scale))))
