"""Fixed point (W, F) as in TensorQuant (seed 001).

A value is a W-bit two's-complement integer whose last F bits are the
fraction: ``value = q * 2**-F``, resolution ``2**-F``, range
``[-2**(W-1-F), 2**(W-1-F) - 2**-F]``. Values beyond it saturate to the
ends (and are counted). Rounding is ``nearest`` (half up: floor(x + 1/2))
or ``stochastic`` (floor(x + u), u uniform in [0, 1), so it rounds up with
probability equal to the fractional part and is unbiased on average).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TvmqError
from .common import check_weights, smallest_int
from .metrics import nrmse

ROUNDINGS = ("nearest", "stochastic")


@dataclass
class FixedQuant:
    """A fixed-point tensor: integers ``q`` (smallest signed type), word ``W``, fraction ``F``."""

    q: np.ndarray
    word: int
    frac: int
    rounding: str
    saturated: int

    @property
    def bits(self) -> int:
        return self.word

    @property
    def n_params(self) -> int:
        """No per-tensor floats are stored: F is part of the format."""
        return 0

    def dequantize(self) -> np.ndarray:
        return (self.q.astype(np.float64) * 2.0**-self.frac).astype(np.float32)


def check_format(word, frac) -> tuple[int, int | None]:
    """Validate (W, F); F may be None (chosen later)."""
    if isinstance(word, bool) or not isinstance(word, (int, np.integer)) or not 1 <= word <= 32:
        raise TvmqError(f"fixed-point word width W must be an integer in 1..32, got {word!r}")
    if frac is None:
        return int(word), None
    if isinstance(frac, bool) or not isinstance(frac, (int, np.integer)) or frac < 0:
        raise TvmqError(f"fixed-point fraction bits F must be a non-negative integer, got {frac!r}")
    if frac > word:
        raise TvmqError(f"fixed-point fraction bits F={frac} exceed the word width W={word}")
    return int(word), int(frac)


def round_scaled(x: np.ndarray, rounding: str, rng: np.random.Generator) -> np.ndarray:
    if rounding == "nearest":
        return np.floor(x + 0.5)
    if rounding == "stochastic":
        return np.floor(x + rng.random(x.shape))
    raise TvmqError(f"rounding must be one of {list(ROUNDINGS)}, got {rounding!r}")


def _quantize(w: np.ndarray, word: int, frac: int, rounding: str, seed) -> FixedQuant:
    lo, hi = -(1 << (word - 1)), (1 << (word - 1)) - 1
    raw = round_scaled(w * 2.0**frac, rounding, np.random.default_rng(seed))
    q = np.clip(raw, lo, hi)
    return FixedQuant(q.astype(smallest_int(word, signed=True)), word, frac, rounding, int((q != raw).sum()))


def best_frac(w: np.ndarray, word: int) -> int:
    """F in 0..W with the lowest NRMSE under nearest rounding (ties: the larger F)."""

    w = check_weights(w)
    errs = [(nrmse(w, _quantize(w, word, f, "nearest", 0).dequantize()), -f) for f in range(word + 1)]
    return -min(errs)[1]


def fixed_quantize(w: np.ndarray, word: int, frac: int | None = None, rounding: str = "nearest",
                   seed: int = 0) -> FixedQuant:
    """Quantize ``w`` to (W, F) fixed point.

    Parameters
    ----------
    w : float array, non-empty and finite.
    word : W, total bits including the sign, 1..32.
    frac : F, fractional bits, 0..W; None picks the F with the lowest NRMSE (:func:`best_frac`).
    rounding : ``nearest`` or ``stochastic``.
    seed : seeds stochastic rounding.
    """
    word, frac = check_format(word, frac)
    if rounding not in ROUNDINGS:
        raise TvmqError(f"rounding must be one of {list(ROUNDINGS)}, got {rounding!r}")
    w = check_weights(w)
    if frac is None:
        frac = best_frac(w, word)
    return _quantize(w, word, frac, rounding, seed)
