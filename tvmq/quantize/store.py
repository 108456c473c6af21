"""What a quantized tensor stores: packed integer arrays plus codebooks or scales, and back.

``encode`` gives plain numpy arrays (saved with ``np.savez``, never pickle)
and a JSON-able description; ``decode`` rebuilds the float32 weights from
exactly those arrays. Widths up to 8 bits are bit-packed (see
:mod:`.pack`); wider integers keep their int16/int32 type.
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from .fixed import FixedQuant
from .kmeans import Codebook
from .pack import pack_codes, pack_signed, unpack_codes, unpack_signed
from .uniform import Grid, UniformQuant


def _pack_ints(q: np.ndarray, bits: int) -> np.ndarray:
    return pack_signed(q, bits) if bits <= 8 else np.ascontiguousarray(q.ravel())


def _unpack_ints(a: np.ndarray, bits: int, count: int) -> np.ndarray:
    return unpack_signed(a, bits, count).astype(np.int64) if bits <= 8 else a.astype(np.int64)


def encode(qt) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) for a :class:`Codebook`, :class:`UniformQuant` or :class:`FixedQuant`."""
    shape = list(qt.q.shape) if hasattr(qt, "q") else list(qt.indices.shape)
    if isinstance(qt, Codebook):
        arrays = dict(indices=pack_codes(qt.indices, qt.bits), codebook=qt.codebook.astype(np.float32))
        meta = dict(method="kmeans", bits=qt.bits, axis=qt.axis, init=qt.init)
    elif isinstance(qt, UniformQuant):
        q = (qt.q > 0).astype(np.uint8) if qt.grid.binary else qt.q
        packed = pack_codes(q, 1) if qt.grid.binary else _pack_ints(q, qt.bits)
        arrays = dict(q=packed, scale=qt.scale.astype(np.float32))
        if not qt.symmetric:
            arrays["zero_point"] = qt.zero_point.astype(np.int32)
        meta = dict(method="uniform", bits=qt.bits, axis=qt.axis, symmetric=qt.symmetric, scale=qt.method)
    elif isinstance(qt, FixedQuant):
        arrays = dict(q=_pack_ints(qt.q, qt.word))
        meta = dict(method="fixed", bits=qt.word, frac=qt.frac, rounding=qt.rounding)
    else:
        raise TvmqError(f"cannot store a {type(qt).__name__}")
    meta["shape"] = shape
    return arrays, meta


def decode(arrays: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    """The float32 weights that ``encode`` stored."""
    shape, bits, count = tuple(meta["shape"]), meta["bits"], int(np.prod(meta["shape"]))
    if meta["method"] == "kmeans":
        idx = unpack_codes(arrays["indices"], bits, count).reshape(shape)
        return Codebook(idx, arrays["codebook"], bits, meta["axis"], meta["init"]).dequantize()
    if meta["method"] == "uniform":
        grid = Grid(bits, meta["symmetric"])
        if grid.binary:
            q = unpack_codes(arrays["q"], 1, count).astype(np.int64) * 2 - 1
        else:
            q = _unpack_ints(arrays["q"], bits, count)
        zp = arrays.get("zero_point", np.zeros_like(arrays["scale"], dtype=np.int32))
        return UniformQuant(q.reshape(shape), arrays["scale"], zp, grid, meta["axis"], meta["scale"], 0).dequantize()
    if meta["method"] == "fixed":
        q = _unpack_ints(arrays["q"], bits, count).reshape(shape)
        return FixedQuant(q, bits, meta["frac"], meta["rounding"], 0).dequantize()
    raise TvmqError(f"unknown stored method {meta['method']!r}")


def stored_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes of the stored arrays (the real size after packing, without file headers)."""
    return int(sum(a.nbytes for a in arrays.values()))
