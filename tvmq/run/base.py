"""Runners: take built candidates, verify each against numpy, then time it.

A runner never reports a time for a candidate that failed: its status says
why (``run_error``, ``timeout``, ``wrong_result``) and ``times`` stays empty.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from ..build.result import BuildResult  # noqa: F401  (runners take builds)
from .timing import Timed, time_module  # noqa: F401  (runners time with it)

from ..errors import BOARD_ERROR_PREFIX  # noqa: F401  (runners mark board failures with it)
STATUSES = ("ok", "build_error", "run_error", "timeout", "wrong_result", "invalid")


@dataclass
class RunResult(Timed):
    """One measured candidate: status, every repeat's seconds, largest error."""

    status: str
    times: list = field(default_factory=list)
    error: str = ""
    max_abs_err: float | None = None
    compile_s: float = 0.0
    board: str | None = None  # the RPC server ("host:port") that measured it
    instructions: dict | None = None  # the kernel's key instructions, from its build (None: not counted)


class Verifier(abc.ABC):
    """What a runner needs to check one candidate: its inputs, its output's
    shape and dtype, and the comparison with the numpy reference."""

    @abc.abstractmethod
    def inputs(self, config: dict) -> list: ...

    @abc.abstractmethod
    def output_spec(self, config: dict) -> tuple: ...

    @abc.abstractmethod
    def check(self, config: dict, out: np.ndarray) -> tuple[bool, float]: ...


class Runner(abc.ABC):
    """Measures built candidates; ``label`` says where (``local``, ``rpc``, ``rpc-emulated``)."""

    label = "local"

    @abc.abstractmethod
    def run(self, builds: list[BuildResult], verifier: Verifier, settings) -> list[RunResult]: ...

    def close(self):
        pass
