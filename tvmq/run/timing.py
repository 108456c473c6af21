"""The one timing module: every time tvmq reports comes from one of these two loops.

* ``time_module``: a compiled TVM function, by TVM's ``time_evaluator`` (kernels, the peak, exported
  models; locally or on an RPC board);
* ``time_callable``: a Python callable (onnxruntime sessions, numpy, a Relax VM from Python).

Both take ``repeat`` samples, each long enough (``min_repeat_ms``) to dwarf the timer, after a
warm-up run. Where a result is compared with a peer, each side runs in a process of its own
(TVM's thread pool keeps spinning after a kernel and would take a core from the other side).
"""

from __future__ import annotations

import time

import numpy as np


class Timed:
    """What a measured result answers about its samples (``status``, ``times`` in seconds)."""

    status: str
    times: list

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("inf")


def time_module(mod, dev, inputs, out_spec, settings, func="main"):
    """Run ``mod[func]`` once, return (output, per-repeat seconds).

    Works for local and RPC modules alike (``dev`` may be a remote device).
    """
    import tvm  # lazy: TVM is heavy and stays out of start-up

    args = [tvm.runtime.tensor(a, dev) for a in inputs]
    out = tvm.runtime.tensor(np.zeros(out_spec[0], out_spec[1]), dev)
    mod[func](*args, out)
    dev.sync()
    result = out.numpy()
    number, min_ms, kw = settings.number, settings.min_repeat_ms, {}
    if settings.flush_cache:  # TVM flushes before each sample only: one run per sample, or the rest run hot
        number, min_ms, kw = 1, 0, {"f_preproc": "cache_flush_cpu_non_first_arg"}
    ev = mod.time_evaluator(func, dev, number=number, repeat=settings.repeat, min_repeat_ms=min_ms, **kw)
    times = list(ev(*args, out).results)
    return result, [float(t) for t in times]


def time_callable(fn, repeat: int = 5, number: int = 1, min_repeat_ms: float = 20.0) -> list[float]:
    """Seconds per call for ``repeat`` samples; each sample runs ``fn`` enough times to last ``min_repeat_ms``."""
    fn()  # warm-up (first-run allocations, packing)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(number, int(np.ceil(min_repeat_ms / 1e3 / one)))
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return out
