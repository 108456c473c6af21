"""Error and compression measures for a quantized tensor.

NRMSE is the RMS error divided by the reference's range (max - min), so it
compares across layers of different scale; SQNR is signal power over noise
power in dB. Sizes count the weights only (biases stay float): ``before`` is
the float tensor, ``formula`` is ``n*bits + params*32`` bits (seed 004 eq.
7.2 when the params are a codebook of k float32 entries:
``r = n*s / (n*log2(k) + k*s)``), ``packed`` is the bytes actually stored.
"""

from __future__ import annotations

import numpy as np

PARAM_BITS = 32  # codebook entries and scales are float32, zero points int32


def nrmse(ref, approx) -> float:
    """RMS of ``approx - ref`` over the range of ``ref``; 0 if equal, inf if ``ref`` is constant and they differ."""
    ref = np.asarray(ref, np.float64)
    err = np.sqrt(np.mean((np.asarray(approx, np.float64) - ref) ** 2))
    span = float(ref.max() - ref.min())
    if err == 0:
        return 0.0
    return float(err / span) if span > 0 else float("inf")


def sqnr_db(ref, approx) -> float:
    """10 log10(sum ref^2 / sum (approx - ref)^2); inf when exact."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((np.asarray(approx, np.float64) - ref) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0:
        return float("inf")
    return 10 * np.log10(signal / noise) if signal > 0 else float("-inf")


def max_abs_diff(ref, approx) -> float:
    return float(np.max(np.abs(np.asarray(approx, np.float64) - np.asarray(ref, np.float64))))


def sparsity(a) -> float:
    """Fraction of exact zeros."""
    a = np.asarray(a)
    return float(np.count_nonzero(a == 0) / a.size) if a.size else 0.0


def distinct_values(a) -> int:
    return int(np.unique(np.asarray(a)).size)


def unique_kernels(w) -> dict | None:
    """Distinct 2-D kernels of an (O, I, Kh, Kw) tensor and how often each repeats (seed 004, 8.6).

    Returns None for tensors that are not 4-D. ``repeats`` lists the repeat
    counts, most frequent first.
    """
    w = np.asarray(w)
    if w.ndim != 4:
        return None
    flat = np.ascontiguousarray(w.reshape(-1, w.shape[2] * w.shape[3]))
    _, counts = np.unique(flat, axis=0, return_counts=True)
    counts = np.sort(counts)[::-1]
    return dict(unique=int(counts.size), total=int(flat.shape[0]), max_repeat=int(counts[0]),
                repeats=[int(c) for c in counts])


def formula_bytes(n: int, bits: int, n_params: int, param_bits: int = PARAM_BITS) -> float:
    """Stored size by formula: n indices/integers of ``bits`` bits plus side parameters, in bytes."""
    return (n * bits + n_params * param_bits) / 8


def codebook_rate(n: int, bits: int, s: int = PARAM_BITS) -> float:
    """Seed 004 eq. 7.2: r = n*s / (n*log2(k) + k*s), k = 2**bits, one codebook."""
    k = 2**bits
    return n * s / (n * np.log2(k) + k * s)


def tensor_report(ref, approx) -> dict:
    """Error measures of ``approx`` against ``ref`` plus sparsity, distinct values and unique kernels."""
    uk = unique_kernels(approx)
    return dict(
        nrmse=nrmse(ref, approx), sqnr_db=sqnr_db(ref, approx), max_abs_diff=max_abs_diff(ref, approx),
        sparsity=sparsity(approx), sparsity_float=sparsity(ref), distinct=distinct_values(approx),
        unique_kernels=None if uk is None else {k: uk[k] for k in ("unique", "total", "max_repeat")},
    )


def size_report(n: int, itemsize: int, bits: int, n_params: int, packed_bytes: int) -> dict:
    """Bytes before and after (formula and packed) and the two compression ratios."""
    before = n * itemsize
    formula = formula_bytes(n, bits, n_params)
    return dict(bytes_before=int(before), bytes_formula=float(formula), bytes_packed=int(packed_bytes),
                ratio_formula=before / formula, ratio_packed=before / packed_bytes)
