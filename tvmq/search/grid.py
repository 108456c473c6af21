"""``grid``: every valid config in the space's fixed order, the default first."""

from ..space import config_key
from .base import Tuner


class GridTuner(Tuner):
    name = "grid"

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self._it = iter([space.default, *space.enumerate()])

    def next_batch(self, n):
        out, keys = [], set()
        for cfg in self._it:
            k = config_key(cfg)
            if k in self.scores or k in keys:
                continue
            keys.add(k)
            out.append(cfg)
            if len(out) >= n:
                break
        return out
