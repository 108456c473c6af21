"""export/weights.py: weights.npz saved deflated, loaded whole or one checked array at a time."""

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.export import weights as W


def spec(name, a):
    return {"name": name, "shape": list(a.shape), "dtype": str(a.dtype)}


def test_load_each_yields_in_the_libraries_order_one_checked_array_at_a_time(tmp_path):
    a, b = np.arange(4, dtype=np.float32).reshape(2, 2), np.array([1, -2, 3], np.int8)
    path = W.save(tmp_path / "weights.npz", {"a": a, "b": b})
    got = list(W.load_each(path, [spec("b", b), spec("a", a)]))
    np.testing.assert_array_equal(got[0], b)
    np.testing.assert_array_equal(got[1], a)
    assert W.load(path).keys() == {"a", "b"}
    # lazy: the first array comes before the second is read or checked (its dtype is wrong here)
    it = W.load_each(path, [spec("a", a), {**spec("b", b), "dtype": "uint8"}])
    np.testing.assert_array_equal(next(it), a)
    with pytest.raises(TvmqError, match=r"'b' is \[3\] int8, the library needs \[3\] uint8"):
        next(it)
    with pytest.raises(TvmqError, match="lacks array 'c'"):
        list(W.load_each(path, [spec("c", a)]))
    with pytest.raises(TvmqError, match="is missing"):
        list(W.load_each(tmp_path / "none.npz", [spec("a", a)]))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TvmqError, match="not a readable .npz"):
        W.load(tmp_path / "bad.npz")
    with pytest.raises(TvmqError, match="not a readable .npz"):
        list(W.load_each(tmp_path / "bad.npz", [spec("a", a)]))
