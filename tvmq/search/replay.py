"""Simulation mode: tune against real records instead of real kernels (KernelTuner's idea).

``replay(records, space)`` gives a space restricted to the configs the records measured and a
measure function that answers each with its recorded status and times. Tuners then run on real
timings, in milliseconds, with no compiler or CPU involved: tests and tuner studies use it.
"""

from __future__ import annotations

import numpy as np

from ..errors import TvmqError
from ..run.base import RunResult
from ..space import Space, config_key


class RecordedSpace(Space):
    """``space`` narrowed to ``configs``: sampling, neighbours and validity only see recorded configs."""

    def __init__(self, space: Space, configs: list[dict]):
        self.__dict__.update(space.__dict__)
        self.recorded = list({config_key(c): c for c in configs}.values())
        if not self.recorded:
            raise TvmqError("replay: no recorded config of this task fits its space")
        self._keys = {config_key(c) for c in self.recorded}
        self._codes = np.array([self._code(c) for c in self.recorded], dtype=np.int64)  # knob values, for distances
        self.default = self.default if config_key(self.default) in self._keys else self.recorded[0]

    def is_valid(self, cfg: dict) -> bool:
        return config_key(cfg) in self._keys

    def violation(self, cfg: dict) -> str | None:
        return None if self.is_valid(cfg) else "not among the recorded configs"

    def sample(self, rng: np.random.Generator, tries: int = 0) -> dict:
        return self.recorded[int(rng.integers(len(self.recorded)))]

    def enumerate(self):
        yield from self.recorded

    def neighbors(self, cfg: dict, rng: np.random.Generator, n: int = 1) -> dict:
        """A recorded config differing from ``cfg`` in the fewest knobs (at least one); ties at random."""
        dist = (self._codes != self._code(cfg)).sum(axis=1)
        dist = np.where(dist > 0, dist, np.iinfo(np.int64).max)
        near = np.flatnonzero(dist == dist.min()) if dist.min() < np.iinfo(np.int64).max else []
        return self.recorded[int(near[rng.integers(len(near))])] if len(near) else dict(cfg)

    def _code(self, cfg: dict) -> np.ndarray:
        return np.array([hash(repr(cfg.get(k))) for k in self.names], dtype=np.int64)


def replay(records: list[dict], space: Space):
    """(RecordedSpace, measure) from the records of one task: each config's first recorded result."""
    answers: dict[str, RunResult] = {}
    configs: dict[str, dict] = {}
    for r in records:
        cfg = space.canonical(space.complete(r["config"]))
        k = config_key(cfg)
        if k not in answers and all(cfg[kn.name] in kn.values for kn in space.knobs):
            answers[k] = RunResult(r["status"], list(r.get("times") or []), r.get("error", ""), r.get("max_abs_err"))
            configs[k] = cfg
    rspace = RecordedSpace(space, list(configs.values()))

    def measure(cfgs):
        return [answers.get(config_key(c)) or RunResult("run_error", error="replay: config not in the records")
                for c in cfgs]

    return rspace, measure

