"""Bit packing of codes for storage.

One layout for every width: the flattened codes form a little-endian bit
stream, code ``i`` in bits ``[i*bits, (i+1)*bits)``, low bits first. For
1, 2 and 4 bits this is :func:`tvmq.ops.reference.pack_bits` with
``planar=0``; 3, 5, 6 and 7 bits straddle bytes and use the general stream;
8 bits is the codes themselves. (The kernels read packed 1/2/4-bit indices
planar by default, groups of 16 or 64 bytes: ``pack_bits(..., planar)``.)
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from ..ops.reference import pack_bits, pack_int4, unpack_bits, unpack_int4

KERNEL_WIDTHS = (1, 2, 4)


def _check_bits(bits: int):
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise TvmqError(f"pack bits must be an integer in 1..8, got {bits!r}")


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits occupy when packed."""
    return -(-count * bits // 8)


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned codes (each < 2**bits) into a flat uint8 array.

    Parameters
    ----------
    codes : array of non-negative integers below ``2**bits``, any shape.
    bits : width in 1..8.

    Returns
    -------
    uint8 array of ``packed_nbytes(codes.size, bits)`` bytes.
    """
    _check_bits(bits)
    flat = np.asarray(codes).ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= 1 << bits):
        raise TvmqError(f"codes must lie in 0..{(1 << bits) - 1} for {bits}-bit packing, "
                        f"got {flat.min()}..{flat.max()}")
    if bits == 8:
        return flat.astype(np.uint8)
    if bits in KERNEL_WIDTHS:
        return pack_bits(flat, bits)
    return pack_stream(flat, bits)


def unpack_codes(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the first ``count`` codes as uint8."""
    _check_bits(bits)
    packed = np.asarray(packed, np.uint8).ravel()
    if packed.size < packed_nbytes(count, bits):
        raise TvmqError(f"packed buffer has {packed.size} bytes, {count} {bits}-bit codes need "
                        f"{packed_nbytes(count, bits)}")
    if bits == 8:
        return packed[:count].copy()
    if bits in KERNEL_WIDTHS:
        return unpack_bits(packed, bits, count)
    return unpack_stream(packed, bits, count)


def pack_stream(codes: np.ndarray, bits: int) -> np.ndarray:
    """General little-endian bit stream for any width 1..8."""
    flat = np.asarray(codes).astype(np.uint8).ravel()
    # each code -> its `bits` low bits, least significant first
    b = np.unpackbits(flat[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(b.ravel(), bitorder="little")


def unpack_stream(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    b = np.unpackbits(np.asarray(packed, np.uint8), bitorder="little")[: count * bits].reshape(count, bits)
    return (b.astype(np.uint8) << np.arange(bits, dtype=np.uint8)).sum(1, dtype=np.uint16).astype(np.uint8)


def pack_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack two's-complement integers in ``[-2**(bits-1), 2**(bits-1))``; int4 uses the kernel's layout."""
    _check_bits(bits)
    v = np.asarray(values).astype(np.int64).ravel()
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise TvmqError(f"values must lie in {lo}..{hi} for signed {bits}-bit packing, got {v.min()}..{v.max()}")
    if bits == 4:
        return pack_int4(v)
    return pack_codes((v & ((1 << bits) - 1)).astype(np.uint8), bits)


def unpack_signed(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_signed`: int8 values."""
    if bits == 4:
        return unpack_int4(np.asarray(packed, np.uint8).ravel(), count)
    u = unpack_codes(packed, bits, count).astype(np.int16)
    sign = 1 << (bits - 1)
    return ((u ^ sign) - sign).astype(np.int8)
