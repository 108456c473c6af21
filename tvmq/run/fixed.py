"""A verifier for one kernel outside a task: fixed inputs, a given reference, exact or within ``atol``."""

from __future__ import annotations

import numpy as np

from .base import Verifier


class FixedVerifier(Verifier):
    """Hands the runner ``inputs``; an output passes when no element is further than ``atol`` from ``ref``
    (``out_dtype`` when the kernel's output type differs from the reference's, e.g. float32 vs float64)."""

    def __init__(self, inputs: list, ref: np.ndarray, atol: float = 0.0, out_dtype: str | None = None):
        self.ins, self.ref, self.atol = inputs, ref, atol
        self.out_dtype = out_dtype or str(ref.dtype)

    def inputs(self, config):
        return self.ins

    def output_spec(self, config):
        return self.ref.shape, self.out_dtype

    def check(self, config, out):
        if out.shape != self.ref.shape:
            return False, float("inf")
        err = float(np.abs(out.astype(np.float64) - self.ref.astype(np.float64)).max()) if out.size else 0.0
        return err <= self.atol, err
