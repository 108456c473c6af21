"""Fixed point (W, F): resolution, saturation, nearest and stochastic rounding, F choice, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tvmq.errors import TvmqError
from tvmq.quantize import best_frac, fixed_quantize, nrmse

FAST = settings(max_examples=30, deadline=None)
values = hnp.arrays(np.float32, st.integers(1, 60),
                    elements=st.floats(-300, 300, allow_nan=False, allow_subnormal=False, width=32))


@st.composite
def formats(draw):
    word = draw(st.integers(1, 32))
    return word, draw(st.integers(0, word))


@FAST
@given(w=values, fmt=formats(), rounding=st.sampled_from(["nearest", "stochastic"]), seed=st.integers(0, 99))
def test_error_bounded_inside_the_range_and_clamps_counted(w, fmt, rounding, seed):
    word, frac = fmt
    fq = fixed_quantize(w, word, frac, rounding, seed)
    res = 2.0**-frac
    lo, hi = -(2 ** (word - 1)) * res, (2 ** (word - 1) - 1) * res
    assert fq.q.min() >= -(2 ** (word - 1)) and fq.q.max() <= 2 ** (word - 1) - 1
    err = np.abs(fq.dequantize().astype(np.float64) - w)
    inside = (w >= lo) & (w <= hi)
    bound = (res / 2 if rounding == "nearest" else res) * (1 + 1e-9) + 2 * np.finfo(np.float32).eps * np.abs(w)
    assert np.all(err[inside] <= bound[inside])
    assert fq.saturated >= int(((w < lo - res) | (w > hi + res)).sum())


def test_seed_001_example_and_saturation():
    fq = fixed_quantize(np.array([15.375, 100.0, -100.0, 0.06], np.float32), 8, 3)
    assert fq.q.tolist() == [123, 127, -128, 0]
    assert fq.dequantize().tolist() == [15.375, 15.875, -16.0, 0.0]
    assert fq.saturated == 2


def test_nearest_rounds_half_up():
    fq = fixed_quantize(np.array([0.25, -0.25, 0.75], np.float32), 4, 1)
    assert fq.q.tolist() == [1, 0, 2]


def test_stochastic_rounding_is_unbiased_and_seeded():
    w = np.full(20000, 0.3, np.float32)  # 0.3 steps of 2**-0: rounds up 30% of the time
    a = fixed_quantize(w, 8, 0, "stochastic", seed=1)
    assert set(np.unique(a.q)) == {0, 1}
    assert abs(a.dequantize().mean() - 0.3) < 0.02
    assert np.array_equal(a.q, fixed_quantize(w, 8, 0, "stochastic", seed=1).q)
    assert fixed_quantize(w, 8, 0, "nearest").dequantize().mean() == 0


def test_best_frac_minimises_nrmse():
    w = np.random.default_rng(0).normal(0, 0.2, 500).astype(np.float32)
    for word in (4, 8, 12):
        f = best_frac(w, word)
        errs = [nrmse(w, fixed_quantize(w, word, g).dequantize()) for g in range(word + 1)]
        assert errs[f] == min(errs)
        assert fixed_quantize(w, word).frac == f


def test_storage_types():
    w = np.linspace(-1, 1, 10, dtype=np.float32)
    assert [fixed_quantize(w, W, 2).q.dtype for W in (8, 9, 16, 17, 32)] == [np.int8, np.int16, np.int16, np.int32,
                                                                             np.int32]


@pytest.mark.parametrize("word, frac, rounding, match", [
    (0, None, "nearest", "1..32"), (33, None, "nearest", "1..32"), (8, 9, "nearest", "F=9 exceed"),
    (8, -1, "nearest", "non-negative"), (8, 4, "up", "rounding"),
])
def test_bad_formats(word, frac, rounding, match):
    with pytest.raises(TvmqError, match=match):
        fixed_quantize(np.ones(3, np.float32), word, frac, rounding)
