"""Uniform integer quantization: half-step error, grids, saturation, scale choice, monotone error, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tvmq.errors import TvmqError
from tvmq.quantize import nrmse, pow2_curve, uniform_quantize
from tvmq.quantize.uniform import WIDTHS, Grid

FAST = settings(max_examples=30, deadline=None)
F32_EPS = float(np.finfo(np.float32).eps)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5), elements=finite)


def steps(uq):
    s = uq.scale.astype(np.float64)
    s = s if uq.axis is None else s.reshape([-1 if i == uq.axis else 1 for i in range(uq.q.ndim)])
    return uq.grid.step(s)


@FAST
@given(w=arrays, bits=st.sampled_from(WIDTHS), symmetric=st.booleans(), per_channel=st.booleans(),
       scale=st.sampled_from(["minmax", "percentile", "pow2"]))
def test_error_within_half_a_step_inside_the_range(w, bits, symmetric, per_channel, scale):
    uq = uniform_quantize(w, bits, symmetric, axis=0 if per_channel else None, scale=scale, percentile=90)
    lo, hi = uq.bounds()
    inside = (w >= lo) & (w <= hi)
    err = np.abs(uq.dequantize().astype(np.float64) - w)
    # float32 storage of the dequantized value adds at most one rounding of |w|
    tol = np.broadcast_to(steps(uq) / 2, w.shape) * (1 + 1e-9) + 2 * F32_EPS * np.abs(w)
    assert np.all(err[inside] <= tol[inside])
    assert uq.q.min() >= uq.grid.qmin and uq.q.max() <= uq.grid.qmax


@FAST
@given(w=arrays, bits=st.sampled_from(WIDTHS), symmetric=st.booleans(), per_channel=st.booleans())
def test_minmax_never_saturates_and_percentile_counts_clamps(w, bits, symmetric, per_channel):
    axis = 0 if per_channel else None
    assert uniform_quantize(w, bits, symmetric, axis, "minmax").saturated == 0
    uq = uniform_quantize(w, bits, symmetric, axis, "percentile", 60)
    lo, hi = uq.bounds()
    if uq.grid.binary:  # the two levels are the ends: anything beyond them is clamped
        assert uq.saturated == ((w < lo) | (w > hi)).sum()
        return
    half = np.broadcast_to(steps(uq), w.shape) / 2
    # a value clamps when it would round past the last level: more than half a step outside (ties either way)
    surely = ((w < lo - half * 1.001) | (w > hi + half * 1.001)).sum()
    maybe = ((w < lo - half * 0.999) | (w > hi + half * 0.999)).sum()
    assert surely <= uq.saturated <= maybe


@FAST
@given(seed=st.integers(0, 2**31), n=st.integers(16, 300), scale=st.floats(1e-3, 10), symmetric=st.booleans(),
       per_channel=st.booleans())
def test_nrmse_does_not_grow_with_bits(seed, n, scale, symmetric, per_channel):
    """On layer-like weights. The b- and (b+1)-bit grids are not nested, so a handful of values
    (e.g. 6 gaussian values, asymmetric 3 -> 4 bits) can land luckier on the coarser grid."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(0, scale, (3, n))).astype(np.float32)
    axis = 0 if per_channel else None
    errs = [nrmse(w, uniform_quantize(w, b, symmetric, axis).dequantize()) for b in WIDTHS]
    for lo, hi in zip(errs, errs[1:]):
        assert hi <= lo * (1 + 1e-6) + 1e-9


def test_integer_types_and_grids():
    w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(4, 16)
    for bits, dt in [(1, np.int8), (4, np.int8), (8, np.int8), (16, np.int16), (32, np.int32)]:
        assert uniform_quantize(w, bits).q.dtype == dt
    assert (Grid(8, True).qmin, Grid(8, True).qmax) == (-127, 127)
    assert (Grid(8, False).qmin, Grid(8, False).qmax) == (-128, 127)
    assert (Grid(4, True).qmin, Grid(4, True).qmax) == (-7, 7)
    assert (Grid(1, True).qmin, Grid(1, True).qmax) == (-1, 1)
    assert set(np.unique(uniform_quantize(w, 1).q)) == {-1, 1}  # binary: no zero level


def test_zero_stays_exact_and_zero_tensors_work():
    w = np.array([[-0.7, 0.0, 0.2, 0.9], [0.0, 0.0, 0.0, 0.0]], np.float32)
    for sym in (True, False):
        for axis in (None, 0):
            deq = uniform_quantize(w, 4, sym, axis).dequantize()
            assert deq[0, 1] == 0 and np.all(deq[1] == 0)


def test_seed_002_error_ordering_int32_int16_int8():
    w = np.random.default_rng(0).normal(0, 0.05, 10000).astype(np.float32)
    e = [nrmse(w, uniform_quantize(w, b).dequantize()) for b in (32, 16, 8, 4)]
    assert e[0] < 1e-7 < e[1] < 1e-4 < e[2] < 1e-2 < e[3]


def test_pow2_scale_is_a_power_of_two_at_the_bottom_of_the_v_curve():
    w = np.random.default_rng(1).normal(0, 0.05, 4000).astype(np.float32)
    uq = uniform_quantize(w, 8, scale="pow2")
    assert np.log2(float(uq.scale)).is_integer()
    curve = pow2_curve(w.astype(np.float64).reshape(1, -1), Grid(8, True))
    best = min(curve, key=lambda d: d["nrmse"])
    assert float(uq.scale) == best["scale"]
    assert np.isclose(nrmse(w, uq.dequantize()), best["nrmse"], rtol=1e-5)
    # the V: finer scales clamp more, the finest is worse than the best, and so is the coarsest
    sat = [d["saturated"] for d in curve]
    assert all(a >= b for a, b in zip(sat, sat[1:])) and sat[0] > 0 and sat[-1] == 0
    assert curve[0]["nrmse"] > best["nrmse"] and curve[-1]["nrmse"] > best["nrmse"]


def test_percentile_clips_an_outlier_and_counts_it():
    w = np.concatenate([np.random.default_rng(2).normal(0, 0.1, 999), [50.0]]).astype(np.float32)
    mm, pc = uniform_quantize(w, 4, scale="minmax"), uniform_quantize(w, 4, scale="percentile", percentile=99)
    assert mm.saturated == 0 and pc.saturated >= 1
    assert nrmse(w[:-1], pc.dequantize()[:-1]) < nrmse(w[:-1], mm.dequantize()[:-1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=0), "1..8, 16, 32"), (dict(bits=9), "1..8, 16, 32"), (dict(bits=12), "1..8, 16, 32"),
    (dict(bits=33), "1..8, 16, 32"), (dict(bits=8, scale="mse"), "scale"),
    (dict(bits=8, scale="percentile", percentile=10), "percentile"), (dict(bits=8, axis=-3), "axis"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(TvmqError, match=match):
        uniform_quantize(np.ones((2, 2), np.float32), **kwargs)


def test_empty_weights():
    with pytest.raises(TvmqError, match="empty"):
        uniform_quantize(np.zeros((4, 0), np.float32), 8)
