"""``weights.npz``: the arrays a library reads at run time, as plain numpy arrays (no pickle).

Arrays are stored exactly as the kernels read them (codebook indices packed in the kernel's
layout plus the codebook, int8 weights plus scales, or float weights), so loading is a
file read and nothing is converted at run time. The zip is deflated (``np.savez_compressed``):
the zeros of padded channels (grouped kernels pad each group to whole blocks) and constant
per-channel arrays then cost little on disk; ``np.load`` reads it the same way (ShuffleNet's
4-bit export: 1.03 MB stored, 0.79 MB deflated, about 20 ms more to load).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import TvmqError


def save(path, arrays: dict[str, np.ndarray]) -> Path:
    for k, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype == object:
            raise TvmqError(f"weight {k!r} is not a plain numeric array")
    np.savez_compressed(path, **{k: np.ascontiguousarray(a) for k, a in arrays.items()})
    return Path(path)


def load(path, expect: list[dict] | None = None) -> dict[str, np.ndarray]:
    """All arrays of ``path``; with ``expect`` (dicts of name/shape/dtype) each is checked."""
    with _open(path) as z:
        arrays = {k: _read(path, z, k) for k in z.files}
    for spec in expect or []:
        _check(path, spec, arrays.get(spec["name"]))
    return arrays


def load_each(path, expect: list[dict]):
    """The arrays ``expect`` names, in its order, each read and checked only when the previous one has
    been taken: a caller that copies each to the device and drops it holds one array at a time, not
    every weight twice (AlexNet float: 244 MB of weights)."""
    with _open(path) as z:
        for spec in expect:
            yield _check(path, spec, _read(path, z, spec["name"]) if spec["name"] in z.files else None)


def _open(path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TvmqError(f"weights file {str(path)!r} is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise TvmqError(f"weights file {str(path)!r} is not a readable .npz of plain arrays ({e})") from None


def _read(path, z, key: str) -> np.ndarray:
    try:
        return z[key]
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise TvmqError(f"weights file {str(path)!r} is not a readable .npz of plain arrays ({e})") from None


def _check(path, spec: dict, a) -> np.ndarray:
    if a is None:
        raise TvmqError(f"weights file {str(path)!r} lacks array {spec['name']!r}")
    if list(a.shape) != list(spec["shape"]) or str(a.dtype) != spec["dtype"]:
        raise TvmqError(f"weights file {str(path)!r}: {spec['name']!r} is {list(a.shape)} {a.dtype}, the library "
                        f"needs {list(spec['shape'])} {spec['dtype']}")
    return a
