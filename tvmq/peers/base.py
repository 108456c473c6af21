"""What every peer shares: its result record, the timing loop for a Python callable, its seeded inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..run.timing import Timed, time_callable  # noqa: F401  (peers time with it)


@dataclass
class PeerResult(Timed):
    """One peer measurement: status, per-sample seconds, largest error vs numpy."""

    name: str
    status: str
    times: list = field(default_factory=list)
    max_abs_err: float | None = None
    error: str = ""
    threads: int = 1
    info: dict = field(default_factory=dict)


def conv_inputs(wl, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((wl.n, wl.c_in, wl.h, wl.w)).astype(np.float32)
    w = (rng.standard_normal((wl.c_out, wl.c_in, wl.kh, wl.kw)) / np.sqrt(wl.c_in * wl.kh * wl.kw)).astype(np.float32)
    return x, w
