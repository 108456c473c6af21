"""numpy as a peer: im2col (one copy of the sliding windows) + a float32 matmul through numpy's BLAS.

Measured in a child process so the BLAS thread count (``OPENBLAS_NUM_THREADS`` and friends) is set
before numpy loads, and ``OPENBLAS_CORETYPE`` is removed from that child's environment (a
``Haswell`` override there halves OpenBLAS's speed on this machine; see the TVM notes). The time
includes the im2col copy, as a user of this baseline would pay it. The result is checked against
tvmq's numpy reference (``tvmq.ops.reference.conv2d_nchw``) before the time counts.

``python -m tvmq.peers.numpy_im2col '{"c_in": 8, ...}' --threads 2`` runs it by hand (JSON out).
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import child
from ..ops.float import float_tolerance
from .base import PeerResult, conv_inputs, time_callable
from ..ops.reference import windows_nchw
from ..ops.reference import conv2d_nchw

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def im2col_conv(x: np.ndarray, w: np.ndarray, wl) -> np.ndarray:
    """NCHW x OIHW -> NCHW by an explicit im2col matrix (N, C*Kh*Kw, Ho*Wo) and one matmul."""

    win = windows_nchw(x, wl)  # (N, C, Ho, Wo, Kh, Kw), a view
    n, c, ho, wo, kh, kw = win.shape
    col = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * kh * kw, ho * wo)
    y = np.matmul(w.reshape(w.shape[0], -1), col)
    return y.reshape(n, w.shape[0], ho, wo)


def measure_here(wl, repeat=5, number=1, min_repeat_ms=20.0, seed=0, threads=None) -> PeerResult:
    """Verify and time in this process (BLAS threads as this process already has them)."""

    x, w = conv_inputs(wl, seed)
    y = im2col_conv(x, w, wl)
    ref = conv2d_nchw(x, w, wl)
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    if y.shape != ref.shape or not np.allclose(y, ref, *float_tolerance(wl)):
        return PeerResult("numpy_im2col", "wrong_result", max_abs_err=err, threads=threads or 0,
                          error=f"max abs error {err:.3g} vs numpy reference")
    times = time_callable(lambda: im2col_conv(x, w, wl), repeat, number, min_repeat_ms)
    return PeerResult("numpy_im2col", "ok", times, err, threads=threads or 0, info=_blas_info())


def _blas_info() -> dict:
    info = {"coretype": os.environ.get("OPENBLAS_CORETYPE"), "numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
        info["blas"] = cfg.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:  # noqa: BLE001 - older numpy
        pass
    return info


def child_env(threads: int, keep_coretype: bool = False) -> dict:
    env = dict(os.environ)
    for v in BLAS_THREAD_VARS:
        env[v] = str(threads)
    if not keep_coretype:
        env.pop("OPENBLAS_CORETYPE", None)
    return env


def run(wl, threads: int = 1, repeat: int = 5, number: int = 1, min_repeat_ms: float = 20.0, seed: int = 0,
        timeout_s: float = 300.0, keep_coretype: bool = False) -> PeerResult:
    """Verify and time im2col + numpy matmul with ``threads`` BLAS threads, in a child process."""
    return child.run_child("tvmq.peers.numpy_im2col", "numpy_im2col", wl, [], threads, timeout_s,
                           env=child_env(threads, keep_coretype), repeat=repeat, number=number,
                           min_repeat_ms=min_repeat_ms, seed=seed)


def main(argv=None):
    a = child.arg_parser("python -m tvmq.peers.numpy_im2col").parse_args(argv)
    r = measure_here(child.workload_of(a), a.repeat, a.number, a.min_repeat_ms, a.seed, a.threads)
    print(json.dumps(r.__dict__))


if __name__ == "__main__":
    main()
