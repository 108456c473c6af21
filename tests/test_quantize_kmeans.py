"""k-means codebooks: index range, determinism, monotone error in bits, initialisations, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvmq.errors import TvmqError
from tvmq.quantize import INITS, index_dtype, kmeans_quantize, nrmse
from tvmq.quantize.kmeans import init_centroids

FAST = settings(max_examples=25, deadline=None)


def weights(seed, shape, dist=0, scale=1.0):
    """Zero-centred weights like a trained layer's: gaussian, laplacian or uniform."""
    rng = np.random.default_rng(seed)
    draw = (rng.normal, rng.laplace, lambda a, b, s: rng.uniform(-b, b, s))[dist]
    return (draw(0, 1, shape) * scale).astype(np.float32)


shapes = st.tuples(st.integers(1, 8), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))


@FAST
@given(seed=st.integers(0, 2**31), shape=shapes, bits=st.integers(1, 8), init=st.sampled_from(INITS),
       per_channel=st.booleans())
def test_indices_below_two_to_the_bits(seed, shape, bits, init, per_channel):
    w = weights(seed, shape, seed % 3)
    cb = kmeans_quantize(w, bits, init, axis=0 if per_channel else None, seed=seed)
    assert cb.indices.dtype == np.uint8 and cb.indices.shape == w.shape
    assert int(cb.indices.max()) < 2**bits
    assert cb.codebook.shape == ((shape[0], 2**bits) if per_channel else (2**bits,))
    assert cb.codebook.dtype == np.float32
    deq = cb.dequantize()
    assert deq.shape == w.shape and deq.dtype == np.float32


@FAST
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), bits=st.integers(1, 8), init=st.sampled_from(INITS))
def test_each_weight_takes_its_nearest_centroid(seed, n, bits, init):
    w = weights(seed, (n,), seed % 3)
    cb = kmeans_quantize(w, bits, init, seed=seed)
    err = np.abs(cb.dequantize().astype(np.float64) - w)
    nearest = np.abs(w[:, None].astype(np.float64) - cb.codebook[None, :]).min(1)
    assert np.all(err <= nearest + 1e-6 * (np.abs(w) + 1e-30))


@FAST
@given(seed=st.integers(0, 2**31), n=st.integers(2, 400), dist=st.integers(0, 2),
       scale=st.floats(1e-3, 10), per_channel=st.booleans())
def test_nrmse_does_not_grow_with_bits_linear_init(seed, n, dist, scale, per_channel):
    shape = (4, n) if per_channel else (n,)
    w = weights(seed, shape, dist, scale)
    errs = [nrmse(w, kmeans_quantize(w, b, "linear", axis=0 if per_channel else None).dequantize())
            for b in range(1, 9)]
    for lo, hi in zip(errs, errs[1:]):
        assert hi <= lo * (1 + 1e-6) + 1e-9


@FAST
@given(seed=st.integers(0, 2**31), init=st.sampled_from(INITS), bits=st.integers(1, 8))
def test_deterministic_under_a_seed(seed, init, bits):
    w = weights(seed, (6, 40))
    a = kmeans_quantize(w, bits, init, axis=0, seed=seed)
    b = kmeans_quantize(w, bits, init, axis=0, seed=seed)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.codebook, b.codebook)


def test_few_distinct_values_are_exact():
    w = np.array([0.5, -0.25, 0.5, 0.0, -0.25, 0.125], np.float32)
    for bits in (2, 3, 8):
        assert nrmse(w, kmeans_quantize(w, bits).dequantize()) == 0


def test_inits_follow_their_definitions():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 2000)
    lin = init_centroids(x, 8, "linear", rng)
    assert np.allclose(lin, np.linspace(x.min(), x.max(), 8))
    rnd = init_centroids(x, 8, "random", np.random.default_rng(1))
    assert np.isin(rnd, x).all()
    den = init_centroids(x, 8, "density", rng)
    assert x.min() <= den.min() and den.max() <= x.max()
    assert abs(den[3] + den[4] - 2 * x.mean()) < 1e-9  # Gaussian quantiles are symmetric about the mean
    log = init_centroids(x, 8, "log", rng)
    pos = log[log > 0]
    assert np.isclose(pos.max(), x.max()) and np.allclose(pos[1:] / pos[:-1], pos[1] / pos[0])  # geometric
    assert (log < 0).sum() == 4


def test_per_channel_codebooks_fit_their_channel():
    w = np.stack([weights(0, (50,)), 100 * weights(1, (50,))])
    cb = kmeans_quantize(w, 3, axis=0)
    assert np.abs(cb.codebook[0]).max() < np.abs(cb.codebook[1]).max() / 10
    # the small channel keeps its own resolution instead of collapsing to one shared centroid
    assert nrmse(w[0], cb.dequantize()[0]) < nrmse(w[0], kmeans_quantize(w, 3).dequantize()[0]) / 5


def test_index_dtype_is_smallest_unsigned():
    assert [index_dtype(b) for b in (1, 8, 9, 16, 17)] == [np.uint8, np.uint8, np.uint16, np.uint16, np.uint32]


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=0), "1..8"), (dict(bits=9), "1..8"), (dict(bits=True), "1..8"),
    (dict(bits=2, init="kmeans++"), "init"), (dict(bits=2, axis=3), "axis"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(TvmqError, match=match):
        kmeans_quantize(np.ones((2, 2), np.float32), **kwargs)


@pytest.mark.parametrize("w, match", [(np.zeros((0, 3), np.float32), "empty"),
                                      (np.array([1.0, np.nan], np.float32), "NaN"),
                                      (np.array([1, 2], np.int8), "floating")])
def test_bad_weights(w, match):
    with pytest.raises(TvmqError, match=match):
        kmeans_quantize(w, 2)
