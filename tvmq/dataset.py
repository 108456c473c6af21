"""Reading an evaluation set: an ``.npz`` with arrays ``x`` and ``y`` (numpy only, so a board can use it)."""

from __future__ import annotations

import zipfile

import numpy as np

from .errors import TvmqError


def read_xy(path) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of ``path`` as stored; one-line errors for a missing, incomplete or unreadable file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise TvmqError(f"--eval: {str(path)!r} lacks array(s) {missing}; it needs 'x' and 'y'")
            return z["x"], z["y"]
    except TvmqError:  # a ValueError too: keep it as it is
        raise
    except FileNotFoundError:
        raise TvmqError(f"--eval: no such file {str(path)!r}") from None
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise TvmqError(f"--eval: {str(path)!r} is not a readable .npz of arrays ({type(e).__name__})") from None
