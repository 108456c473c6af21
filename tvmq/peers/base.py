"""What every peer shares: its result record, the timing loop for a Python callable, its seeded inputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PeerResult:
    """One peer measurement: status, per-sample seconds, largest error vs numpy."""

    name: str
    status: str
    times: list = field(default_factory=list)
    max_abs_err: float | None = None
    error: str = ""
    threads: int = 1
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("inf")


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


def conv_inputs(wl, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((wl.n, wl.c_in, wl.h, wl.w)).astype(np.float32)
    w = (rng.standard_normal((wl.c_out, wl.c_in, wl.kh, wl.kw)) / np.sqrt(wl.c_in * wl.kh * wl.kw)).astype(np.float32)
    return x, w
