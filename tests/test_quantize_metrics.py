"""Metrics: known values, unique kernels, and the compression formula against computed bytes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tvmq.quantize import (codebook_rate, distinct_values, fold_bn, formula_bytes, kmeans_quantize, max_abs_diff,
                           nrmse, sparsity, sqnr_db, uniform_quantize, unique_kernels)
from tvmq.quantize.metrics import size_report
from tvmq.quantize.store import encode, stored_bytes

FAST = settings(max_examples=30, deadline=None)


def test_known_values():
    ref, q = np.array([1.0, 1.0, -1.0, 3.0]), np.array([1.1, 0.9, -1.0, 3.0])
    assert np.isclose(nrmse(ref, q), np.sqrt(0.02 / 4) / 4)
    assert np.isclose(sqnr_db(ref, q), 10 * np.log10(12 / 0.02))
    assert np.isclose(max_abs_diff(ref, q), 0.1)
    assert nrmse(ref, ref) == 0 and sqnr_db(ref, ref) == float("inf")
    assert nrmse(np.ones(3), np.zeros(3)) == float("inf")
    assert sparsity(np.array([0, 1, 0, 2])) == 0.5 and distinct_values(np.array([0, 1, 0, 2])) == 3


def test_unique_kernels_count_repeats():
    a, b = np.ones((3, 3)), np.eye(3)
    w = np.array([[a, b, a], [a, b, 2 * a]])  # (2, 3, 3, 3): a x3, b x2, 2a x1
    uk = unique_kernels(w)
    assert (uk["unique"], uk["total"], uk["max_repeat"], uk["repeats"]) == (3, 6, 3, [3, 2, 1])
    assert unique_kernels(np.ones((4, 5))) is None


def test_quantization_creates_repeated_kernels():
    w = np.random.default_rng(0).normal(0, 1, (16, 8, 3, 3)).astype(np.float32)
    assert unique_kernels(w)["unique"] == 128
    assert unique_kernels(kmeans_quantize(w, 1).dequantize())["unique"] < 128  # 2**9 patterns, 128 kernels


@FAST
@given(n=st.integers(1, 5000), bits=st.integers(1, 8), channels=st.sampled_from([1, 2, 4]))
def test_compression_formula_matches_computed_bytes(n, bits, channels):
    w = np.random.default_rng(n).normal(0, 1, (channels, n)).astype(np.float32)
    per_channel = channels > 1
    cb = kmeans_quantize(w, bits, axis=0 if per_channel else None)
    arrays, _ = encode(cb)
    k = 2**bits
    books = channels if per_channel else 1
    formula = formula_bytes(w.size, bits, cb.n_params)
    assert formula == (w.size * bits + books * k * 32) / 8
    assert stored_bytes(arrays) == -(-w.size * bits // 8) + books * k * 4  # packed = formula rounded up to a byte
    assert 0 <= stored_bytes(arrays) - formula < 1
    if not per_channel:  # seed 004 eq. 7.2: r = n*s / (n*log2(k) + k*s)
        rep = size_report(w.size, 4, bits, cb.n_params, stored_bytes(arrays))
        assert np.isclose(rep["ratio_formula"], codebook_rate(w.size, bits))


@FAST
@given(n=st.integers(1, 3000), bits=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 16, 32]), sym=st.booleans())
def test_uniform_bytes_formula(n, bits, sym):
    w = np.random.default_rng(n).normal(0, 1, (2, n)).astype(np.float32)
    uq = uniform_quantize(w, bits, sym, axis=0)
    arrays, _ = encode(uq)
    payload = -(-w.size * bits // 8)
    assert stored_bytes(arrays) == payload + 4 * 2 * (1 if sym else 2)  # scales (+ zero points) per channel
    assert 0 <= stored_bytes(arrays) - formula_bytes(w.size, bits, uq.n_params) < 1


def test_fold_bn_matches_conv_then_bn():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3, 1, 1)), rng.normal(size=4)
    gamma, beta, mean, var = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)
    x = rng.normal(size=(3, 10))
    conv = w[:, :, 0, 0] @ x + b[:, None]
    bn = gamma[:, None] * (conv - mean[:, None]) / np.sqrt(var[:, None] + 1e-3) + beta[:, None]
    w2, b2 = fold_bn(w, b, gamma, beta, mean, var, eps=1e-3)
    assert np.allclose(w2[:, :, 0, 0] @ x + b2[:, None], bn)
    w3, b3 = fold_bn(w, None, gamma, beta, mean, var)
    assert np.allclose(b3, beta - mean * gamma / np.sqrt(var + 1e-5))
