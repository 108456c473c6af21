"""Inputs and numpy references for a task, cached per operator definition."""

from __future__ import annotations

import json

import numpy as np

from .base import Verifier
from ..templates import template_module
from ..ops import make_op


class TaskVerifier(Verifier):
    """Checks candidates of one task; configs with the same layout share inputs and reference."""

    def __init__(self, task, seed: int = 0):

        self.task = task
        self.seed = seed
        self._op_params = template_module(task.template).op_params
        self._cache: dict[str, tuple] = {}

    def _entry(self, cfg):

        params = self._op_params(cfg)
        key = json.dumps(params, sort_keys=True)
        if key not in self._cache:
            op = make_op(self.task.op_name, self.task.workload, **self.task.params, **params)
            inputs = op.make_inputs(np.random.default_rng(self.seed))
            self._cache[key] = (op, inputs, {})
        return self._cache[key]

    def op(self, cfg):
        return self._entry(cfg)[0]

    def inputs(self, cfg):
        return self._entry(cfg)[1]

    def output_spec(self, cfg):
        a = self._entry(cfg)[0].out_arg
        return a.shape, a.dtype

    def check(self, cfg, out):
        op, inputs, memo = self._entry(cfg)
        if "ref" not in memo:
            memo["ref"] = op.reference(inputs)
        return op.check(out, inputs, ref=memo["ref"])
