"""Search stage: tuners chosen by name."""

from __future__ import annotations

from ..errors import TvmqError
from .base import Tuner  # noqa: F401
from .grid import GridTuner
from .random import RandomTuner
from .xgb import XGBTuner

TUNERS = {"xgb": XGBTuner, "random": RandomTuner, "grid": GridTuner}
ALL_TUNERS = [*TUNERS, "metaschedule"]


def make_tuner(name_or_tuner, space, seed: int = 0) -> Tuner:
    """A tuner by name (``xgb``, ``random``, ``grid``) or the object itself."""
    if isinstance(name_or_tuner, Tuner):
        return name_or_tuner
    if name_or_tuner not in TUNERS:
        raise TvmqError(f"unknown tuner {name_or_tuner!r}; valid tuners are {ALL_TUNERS}")
    return TUNERS[name_or_tuner](space, seed=seed)
