"""``random``: uniform samples of valid configs, never repeating one."""

from .base import Tuner


class RandomTuner(Tuner):
    name = "random"

    def next_batch(self, n):
        return self._fresh_random(n)
