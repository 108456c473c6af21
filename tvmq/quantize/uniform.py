"""Uniform integer quantization (seeds 002, 003): int32, int16, int8, int4 and any width 1..8.

``value = (q - zero_point) * scale`` with ``q`` an integer clamped to its grid.

Symmetric
    ``q`` signed in ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` (restricted range, so
    the grid is symmetric and 0 is exact), zero point 0. One bit has no such
    grid; there symmetric means the binary grid ``q`` in {-1, +1}.
Asymmetric
    ``q`` signed in the full range ``[-2**(b-1), 2**(b-1) - 1]`` and an
    integer zero point in that range, so ``[min(w, 0), max(w, 0)]`` is
    covered and 0 is still exact (int8/int16/int32 storage either way).

The scale comes from the min-max range, a percentile of the values (clips
outliers), or a search over power-of-two scales for the lowest NRMSE: the
V-curve of seed 002, where error falls as the scale grows finer until values
start to clamp. Values outside the grid saturate and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TvmqError
from .common import channel_rows, check_axis, check_weights, from_rows, smallest_int
from .metrics import nrmse

SCALES = ("minmax", "percentile", "pow2")
WIDTHS = tuple(range(1, 9)) + (16, 32)


@dataclass
class Grid:
    """Integer grid of a ``bits``-bit quantizer: q in [qmin, qmax]; binary means {-1, +1}."""

    bits: int
    symmetric: bool

    @property
    def binary(self) -> bool:
        return self.symmetric and self.bits == 1

    @property
    def qmin(self) -> int:
        if self.binary:
            return -1
        return -((1 << (self.bits - 1)) - 1) if self.symmetric else -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        if self.binary:
            return 1
        return (1 << (self.bits - 1)) - 1

    def step(self, scale):
        """Distance between neighbouring levels (binary levels are 2 * scale apart)."""
        return 2 * scale if self.binary else scale


@dataclass
class UniformQuant:
    """A uniformly quantized tensor.

    Attributes
    ----------
    q : integers in the smallest signed type (int8 up to 8 bits, int16, int32).
    scale : float32, shape () per tensor or (channels,) per channel.
    zero_point : int32, same shape as ``scale``.
    grid : the integer grid.
    axis : output-channel axis, or None.
    method : how the scale was chosen.
    saturated : number of values clamped to the grid's ends.
    """

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    grid: Grid
    axis: int | None
    method: str
    saturated: int

    @property
    def bits(self) -> int:
        return self.grid.bits

    @property
    def symmetric(self) -> bool:
        return self.grid.symmetric

    @property
    def n_params(self) -> int:
        """Side parameters stored with the integers: scales, plus zero points if asymmetric."""
        return int(self.scale.size) * (1 if self.symmetric else 2)

    def _per_value(self, a):
        if self.axis is None:
            return a
        shape = [1] * self.q.ndim
        shape[self.axis] = -1
        return a.reshape(shape)

    def dequantize(self) -> np.ndarray:
        """The float32 values the integers stand for."""
        s = self._per_value(self.scale.astype(np.float64))
        z = self._per_value(self.zero_point.astype(np.int64))
        return ((self.q.astype(np.int64) - z) * s).astype(np.float32)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest representable value, broadcastable to the weights."""
        s = self._per_value(self.scale.astype(np.float64))
        z = self._per_value(self.zero_point.astype(np.int64))
        return (self.grid.qmin - z) * s, (self.grid.qmax - z) * s


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in WIDTHS:
        raise TvmqError(f"uniform bits must be one of 1..8, 16, 32, got {bits!r}")
    return int(bits)


def quantize_with(w: np.ndarray, grid: Grid, scale: np.ndarray, zp: np.ndarray) -> tuple[np.ndarray, int]:
    """Integers for float64 rows ``w`` (channels, n) under per-row scale/zero point; and the clamp count."""
    if grid.binary:
        return np.where(w >= 0, 1, -1).astype(np.int64), int((np.abs(w) > scale[:, None]).sum())
    raw = np.rint(w / scale[:, None]) + zp[:, None]
    q = np.clip(raw, grid.qmin, grid.qmax)
    return q.astype(np.int64), int((q != raw).sum())


def zero_point(lo: np.ndarray, scale: np.ndarray, grid: Grid) -> np.ndarray:
    if grid.symmetric:
        return np.zeros_like(scale, dtype=np.int64)
    return np.clip(np.rint(grid.qmin - lo / scale), grid.qmin, grid.qmax).astype(np.int64)


def _safe(scale: np.ndarray) -> np.ndarray:
    """A zero range (all-zero channel) still needs a usable scale; any positive one is exact."""
    return np.where(scale > 0, scale, 1.0)


def range_scale(lo: np.ndarray, hi: np.ndarray, grid: Grid) -> np.ndarray:
    """Scale that maps [lo, hi] (lo <= 0 <= hi) onto the grid."""
    if grid.binary:
        return _safe(np.maximum(-lo, hi))
    if grid.symmetric:
        return _safe(np.maximum(-lo, hi) / grid.qmax)
    return _safe((hi - lo) / (grid.qmax - grid.qmin))


def nrmse_rows(rows: np.ndarray, deq: np.ndarray) -> float:

    return nrmse(rows, deq)


def pow2_curve(rows: np.ndarray, grid: Grid, span: int = 12) -> list[dict]:
    """NRMSE and clamp count for power-of-two scales around the no-clamp scale (seed 002's V-curve).

    One exponent per row set, shared by every row; per-channel search calls this per row.
    """
    lo, hi = np.minimum(rows.min(), 0.0), np.maximum(rows.max(), 0.0)
    top = float(range_scale(np.array([lo]), np.array([hi]), grid)[0])
    e0 = int(np.ceil(np.log2(top)))
    out = []
    for e in range(e0 - span, e0 + 3):
        s = np.full(rows.shape[0], 2.0**e)
        z = zero_point(np.full(rows.shape[0], lo), s, grid)
        q, sat = quantize_with(rows, grid, s, z)
        deq = (q - z[:, None]) * s[:, None]
        out.append(dict(exponent=e, scale=2.0**e, nrmse=nrmse_rows(rows, deq), saturated=sat))
    return out


def choose_scale(rows: np.ndarray, grid: Grid, method: str, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (scale, low end of the range the grid must cover) by ``method``."""
    if method == "pow2":
        best = [min(pow2_curve(r[None, :], grid), key=lambda d: (d["nrmse"], -d["exponent"])) for r in rows]
        return np.array([b["scale"] for b in best]), np.minimum(rows.min(1), 0.0)
    if method == "minmax":
        lo, hi = rows.min(1), rows.max(1)
    elif method == "percentile":
        if not 50 < percentile <= 100:
            raise TvmqError(f"percentile must be in (50, 100], got {percentile}")
        if grid.symmetric:
            hi = np.percentile(np.abs(rows), percentile, axis=1)
            lo = -hi
        else:
            lo, hi = np.percentile(rows, 100 - percentile, axis=1), np.percentile(rows, percentile, axis=1)
    else:
        raise TvmqError(f"uniform scale must be one of {list(SCALES)}, got {method!r}")
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    return range_scale(lo, hi, grid), lo


def float32_up(s: np.ndarray) -> np.ndarray:
    """``s`` as the nearest float32 not below it (a smaller stored scale would clamp the range's end)."""
    s32 = s.astype(np.float32)
    return np.where(s32.astype(np.float64) < s, np.nextafter(s32, np.float32(np.inf)), s32).astype(np.float64)


def uniform_quantize(w: np.ndarray, bits: int, symmetric: bool = True, axis: int | None = None,
                     scale: str = "minmax", percentile: float = 99.9) -> UniformQuant:
    """Quantize ``w`` to ``bits``-bit integers with a scale (and zero point) per tensor or per channel.

    Parameters
    ----------
    w : float array, non-empty and finite.
    bits : 1..8, 16 or 32.
    symmetric : restricted grid with zero point 0 if True, else full grid with a zero point.
    axis : output-channel axis for per-channel scales; None for one scale.
    scale : ``minmax``, ``percentile`` or ``pow2`` (lowest-NRMSE power of two).
    percentile : for ``scale="percentile"``, the percentile of the values mapped to the grid's end.
    """
    bits = check_bits(bits)
    w = check_weights(w)
    axis = check_axis(w.shape, axis)
    grid = Grid(bits, bool(symmetric))
    rows = w.reshape(1, -1) if axis is None else channel_rows(w, axis)
    s, lo = choose_scale(rows, grid, scale, percentile)
    s = float32_up(s)  # the stored scale is float32: quantize with exactly that
    z = zero_point(lo, s, grid)
    q, sat = quantize_with(rows, grid, s, z)
    q = q.reshape(w.shape) if axis is None else from_rows(q, w.shape, axis)
    shape = () if axis is None else (rows.shape[0],)
    return UniformQuant(q.astype(smallest_int(bits, signed=True)), s.astype(np.float32).reshape(shape),
                        z.astype(np.int32).reshape(shape), grid, axis, scale, sat)
