"""k-means codebooks (seed 004, chapter 7): weights become indices into 2**bits centroids.

Clustering is 1-D Lloyd iteration on the flattened weights of a layer (or of
one output channel). Four initialisations, as compared in the thesis:

``linear``
    2**bits points evenly spaced over [min, max].
``random``
    Forgy: 2**bits weights drawn without replacement (seeded).
``density``
    Quantiles of the Gaussian fitted to the weights, mu + sigma *
    Phi^-1((i + 1/2) / k), clipped to [min, max]: dense where weights are.
``log``
    Inverse-logarithmic: k/2 magnitudes spaced geometrically from the
    largest magnitude down to the smallest non-zero one, on each side of
    zero, so centroids crowd near zero like the weights do.

Clusters that end up empty are re-seeded at the worst-represented weights,
so every codebook entry is used whenever the layer has enough distinct
values; this keeps the error non-increasing as bits grow in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TvmqError
from .common import channel_rows, check_axis, check_weights, from_rows, smallest_int

INITS = ("linear", "random", "density", "log")


def index_dtype(bits: int) -> np.dtype:
    """Smallest unsigned integer type that holds a ``bits``-bit index (uint8 for 1..8)."""
    return smallest_int(bits, signed=False)


@dataclass
class Codebook:
    """A k-means quantized tensor.

    Attributes
    ----------
    indices : uint8 array, the weights' shape; entry < 2**bits.
    codebook : float32 array, (k,) per tensor or (channels, k) per channel.
    bits : index width.
    axis : output-channel axis of the per-channel codebooks, or None.
    init : initialisation used.
    """

    indices: np.ndarray
    codebook: np.ndarray
    bits: int
    axis: int | None
    init: str

    def dequantize(self) -> np.ndarray:
        """The float32 weights the indices stand for."""
        if self.axis is None:
            return self.codebook[self.indices]
        rows = channel_rows(self.indices, self.axis)
        vals = np.take_along_axis(self.codebook, rows.astype(np.intp), axis=1)
        return from_rows(vals, self.indices.shape, self.axis)

    @property
    def n_params(self) -> int:
        """Codebook entries stored alongside the indices."""
        return int(self.codebook.size)


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise TvmqError(f"k-means bits must be an integer in 1..8, got {bits!r}")
    return int(bits)


def init_centroids(x: np.ndarray, k: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """Sorted float64 starting centroids for 1-D values ``x``."""
    lo, hi = float(x.min()), float(x.max())
    if init == "linear":
        c = np.linspace(lo, hi, k)
    elif init == "random":
        c = rng.choice(x, size=k, replace=x.size < k)
    elif init == "density":
        from scipy.special import ndtri  # lazy: scipy is heavy and stays out of start-up

        c = np.clip(x.mean() + x.std() * ndtri((np.arange(k) + 0.5) / k), lo, hi)
    elif init == "log":
        c = _log_centroids(x, k)
    else:
        raise TvmqError(f"k-means init must be one of {list(INITS)}, got {init!r}")
    return np.sort(c.astype(np.float64))


def _log_centroids(x: np.ndarray, k: int) -> np.ndarray:
    mags = np.abs(x[x != 0])
    if mags.size == 0:
        return np.zeros(k)
    floor = max(float(mags.min()), float(mags.max()) * 2.0**-24)  # keep geomspace away from denormals
    neg, pos = k // 2, k - k // 2
    top_neg = -float(x.min()) if x.min() < 0 else float(mags.max())
    top_pos = float(x.max()) if x.max() > 0 else float(mags.max())
    return np.concatenate([-np.geomspace(max(top_neg, floor), floor, neg),
                           np.geomspace(max(top_pos, floor), floor, pos)])


def assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest (sorted) centroid for every value."""
    return np.searchsorted((centroids[1:] + centroids[:-1]) / 2, x).astype(np.intp)


def lloyd_1d(x: np.ndarray, centroids: np.ndarray, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Run Lloyd iterations from sorted ``centroids``; returns (centroids, indices)."""
    k = centroids.size
    c = centroids.copy()
    idx = assign(x, c)
    for _ in range(max_iter):
        counts = np.bincount(idx, minlength=k)
        sums = np.bincount(idx, weights=x, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        reseeded = _reseed_empty(x, new, idx, counts == 0)
        new = np.sort(new)
        new_idx = assign(x, new)
        if not reseeded and np.array_equal(new_idx, idx) and np.array_equal(new, c):
            break
        c, idx = new, new_idx
    return c, idx


def _reseed_empty(x, c, idx, empty) -> bool:
    """Move empty centroids onto the worst-represented distinct values (in place)."""
    if not empty.any():
        return False
    err = (x - c[idx]) ** 2
    order = np.argsort(-err, kind="stable")
    cand = x[order][err[order] > 0]
    if cand.size == 0:
        return False
    _, first = np.unique(cand, return_index=True)
    cand = cand[np.sort(first)][: int(empty.sum())]
    slots = np.flatnonzero(empty)[: cand.size]
    c[slots] = cand
    return True


def kmeans_1d(x: np.ndarray, bits: int, init: str = "linear", seed: int | np.random.SeedSequence = 0,
              max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Codebook of 2**bits float64 centroids (sorted) and uint8 indices for 1-D ``x``."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64).ravel()
    c, idx = lloyd_1d(x, init_centroids(x, 1 << bits, init, rng), max_iter)
    return c, idx.astype(index_dtype(bits))


def kmeans_quantize(w: np.ndarray, bits: int, init: str = "linear", axis: int | None = None, seed: int = 0,
                    max_iter: int = 100) -> Codebook:
    """Quantize ``w`` to a 2**bits-entry codebook, per tensor or per output channel.

    Parameters
    ----------
    w : float array, non-empty and finite.
    bits : index width, 1..8.
    init : one of ``INITS``.
    axis : output-channel axis for one codebook per channel; None for one per tensor.
    seed : makes ``random`` initialisation reproducible; channel ``c`` uses ``[seed, c]``.
    max_iter : Lloyd iterations at most.
    """
    bits = check_bits(bits)
    if init not in INITS:
        raise TvmqError(f"k-means init must be one of {list(INITS)}, got {init!r}")
    w = check_weights(w)
    axis = check_axis(w.shape, axis)
    if axis is None:
        c, idx = kmeans_1d(w, bits, init, seed, max_iter)
        return Codebook(idx.reshape(w.shape), c.astype(np.float32), bits, None, init)
    rows = channel_rows(w, axis)
    books, idxs = zip(*(kmeans_1d(r, bits, init, [seed, ch], max_iter) for ch, r in enumerate(rows)))
    indices = from_rows(np.stack(idxs), w.shape, axis)
    return Codebook(indices, np.stack(books).astype(np.float32), bits, axis, init)
