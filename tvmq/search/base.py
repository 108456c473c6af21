"""Tuners propose configs; a measure function (passed in) times them.

Keeping timing outside the tuner lets tests drive any tuner with a fake
measurer, or replay a log.
"""

from __future__ import annotations

import abc

import numpy as np

from ..space import config_key


class Tuner(abc.ABC):
    """Proposes batches of unmeasured configs from a ``Space`` and learns from results.

    Scores are throughput (higher is better); failures score 0.
    """

    name = "base"
    default_batch_size = 8  # candidates proposed and measured per round unless ``--batch-size`` says otherwise
    own_loop = False  # True: the tuner runs its own propose-measure loop in ``tune_task`` (MetaSchedule)

    def __init__(self, space, seed: int = 0):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.scores: dict[str, float] = {}
        self.configs: dict[str, dict] = {}

    def seen(self, cfg) -> bool:
        return config_key(cfg) in self.scores

    def update(self, cfgs: list[dict], scores: list[float]):
        for cfg, s in zip(cfgs, scores):
            k = config_key(cfg)
            self.scores[k] = float(s)
            self.configs[k] = cfg

    @classmethod
    def check_options(cls, opts):
        """Raise a TvmqError naming the flag for a ``TuneOptions`` setting this tuner cannot honour."""

    def warm_start(self, records: list[dict], prior: bool = False):
        """Learn from records of other tasks (default: ignore them); ``prior``: other machines' among them, to be
        corrected by this task's measurements rather than joined with them."""

    @abc.abstractmethod
    def next_batch(self, n: int) -> list[dict]:
        """Up to ``n`` configs not yet measured; empty when the space is exhausted."""

    def _fresh_random(self, n: int, avoid: set | None = None, tries: int = 50) -> list[dict]:
        avoid = set(avoid or ())
        out = []
        for _ in range(n * tries):
            if len(out) >= n:
                break
            cfg = self.space.sample(self.rng)
            k = config_key(cfg)
            if k in self.scores or k in avoid:
                continue
            avoid.add(k)
            out.append(cfg)
        return out
