"""Helpers the quantizers share: input checks and per-channel reshaping."""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError


def check_weights(w, name: str = "weights") -> np.ndarray:
    """``w`` as a float64 array; refuse empty, non-float or non-finite input."""
    a = np.asarray(w)
    if a.size == 0:
        raise TvmqError(f"{name}: empty tensor (shape {list(a.shape)}), nothing to quantize")
    if not np.issubdtype(a.dtype, np.floating):
        raise TvmqError(f"{name}: dtype must be floating point, got {a.dtype}")
    if not np.isfinite(a).all():
        raise TvmqError(f"{name}: {int((~np.isfinite(a)).sum())} values are NaN or infinite")
    return a.astype(np.float64)


def check_axis(shape, axis) -> int | None:
    if axis is None:
        return None
    if not -len(shape) <= axis < len(shape):
        raise TvmqError(f"channel axis {axis} is out of range for a tensor of shape {list(shape)}")
    return axis % len(shape)


def channel_rows(a: np.ndarray, axis: int) -> np.ndarray:
    """(channels, everything else) view of ``a`` with channel ``axis`` first."""
    return np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)


def from_rows(rows: np.ndarray, shape, axis: int) -> np.ndarray:
    """Inverse of :func:`channel_rows` for an array of the original ``shape``."""
    moved = [shape[axis]] + [s for i, s in enumerate(shape) if i != axis]
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), 0, axis))


def smallest_int(bits: int, signed: bool) -> np.dtype:
    """Smallest numpy integer type holding ``bits``-bit (signed or unsigned) values."""
    for size in (8, 16, 32, 64):
        if bits <= size:
            return np.dtype(f"{'int' if signed else 'uint'}{size}")
    raise TvmqError(f"integer width must be at most 64 bits, got {bits}")
