"""Search stage: tuners chosen by name."""

from __future__ import annotations

from ..errors import TvmqError
from .base import Tuner  # noqa: F401
from .grid import GridTuner
from .metaschedule import MetaScheduleTuner
from .random import RandomTuner
from .xgb import XGBTuner

TUNERS = {"xgb": XGBTuner, "random": RandomTuner, "grid": GridTuner, "metaschedule": MetaScheduleTuner}
ALL_TUNERS = list(TUNERS)


def make_tuner(name_or_tuner, space, seed: int = 0, threads: int | None = None, machine=None) -> Tuner:
    """A tuner by name (``xgb``, ``random``, ``grid``, ``metaschedule``) or the object itself.

    ``threads``: the runtime threads the kernels will be measured with (the cost model's
    parallel-balance feature); None keeps the model's default of 2. ``machine``: who measures (the
    cost model's machine features).
    """
    if isinstance(name_or_tuner, Tuner):
        return name_or_tuner
    if name_or_tuner not in TUNERS:
        raise TvmqError(f"unknown tuner {name_or_tuner!r}; valid tuners are {ALL_TUNERS}")
    if name_or_tuner == "xgb":
        return TUNERS["xgb"](space, seed=seed, threads=threads or 2, machine=machine)
    return TUNERS[name_or_tuner](space, seed=seed)
