"""Bit packing: round trips at every width, the kernels' layout (low bits first), stored form round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvmq.errors import TvmqError
from tvmq.ops import reference as R
from tvmq.quantize import fixed_quantize, kmeans_quantize, pack_codes, pack_signed, packed_nbytes, uniform_quantize
from tvmq.quantize import unpack_codes, unpack_signed
from tvmq.quantize.pack import pack_stream, unpack_stream
from tvmq.quantize.store import decode, encode, stored_bytes

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(bits=st.integers(1, 8), data=st.data())
def test_unsigned_round_trip(bits, data):
    codes = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), max_size=70)), np.uint8)
    packed = pack_codes(codes, bits)
    assert packed.dtype == np.uint8 and packed.size == packed_nbytes(codes.size, bits)
    assert np.array_equal(unpack_codes(packed, bits, codes.size), codes)


@FAST
@given(bits=st.integers(1, 8), data=st.data())
def test_signed_round_trip(bits, data):
    vals = np.array(data.draw(st.lists(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1), max_size=70)), np.int8)
    assert np.array_equal(unpack_signed(pack_signed(vals, bits), bits, vals.size), vals)


@FAST
@given(bits=st.sampled_from([1, 2, 4]), data=st.data())
def test_general_stream_is_the_kernel_layout(bits, data):
    codes = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), min_size=1, max_size=70)), np.uint8)
    assert np.array_equal(pack_stream(codes, bits), R.pack_bits(codes, bits))
    assert np.array_equal(unpack_stream(R.pack_bits(codes, bits), bits, codes.size), codes)


def test_low_bits_first():
    assert pack_codes(np.array([1, 2]), 4).tolist() == [0x21]
    assert pack_codes(np.array([1, 0, 0, 0, 0, 0, 0, 1]), 1).tolist() == [0x81]
    assert pack_codes(np.array([7, 0, 1]), 3).tolist() == [0b01000111, 0]  # 111 000 1|00
    assert pack_signed(np.array([-1, 3]), 4).tolist() == R.pack_int4(np.array([-1, 3])).tolist() == [0x3F]


@pytest.mark.parametrize("call, match", [
    (lambda: pack_codes(np.array([4]), 2), "0..3"), (lambda: pack_codes(np.array([1]), 9), "1..8"),
    (lambda: pack_signed(np.array([8]), 4), "-8..7"), (lambda: unpack_codes(np.zeros(1, np.uint8), 4, 3), "need 2"),
])
def test_bad_packing(call, match):
    with pytest.raises(TvmqError, match=match):
        call()


@pytest.mark.parametrize("make", [
    lambda w: kmeans_quantize(w, 3), lambda w: kmeans_quantize(w, 5, axis=0), lambda w: kmeans_quantize(w, 8, "log"),
    lambda w: uniform_quantize(w, 1), lambda w: uniform_quantize(w, 4, False, 0), lambda w: uniform_quantize(w, 7),
    lambda w: uniform_quantize(w, 16, axis=0), lambda w: uniform_quantize(w, 32, False),
    lambda w: fixed_quantize(w, 6, 4), lambda w: fixed_quantize(w, 12, 9, "stochastic"),
])
def test_stored_form_decodes_to_the_same_weights(make):
    w = np.random.default_rng(3).normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    qt = make(w)
    arrays, meta = encode(qt)
    assert np.array_equal(decode(arrays, meta), qt.dequantize())
    assert all(a.dtype != object for a in arrays.values())
    if qt.bits <= 8:  # sub-byte and byte widths are bit-packed: payload is ceil(n*bits/8) bytes
        payload = arrays["indices" if "indices" in arrays else "q"]
        assert payload.nbytes == -(-w.size * qt.bits // 8)
    assert stored_bytes(arrays) == sum(a.nbytes for a in arrays.values())
