"""Run stage: verify built candidates against numpy, then time them."""

from .base import BuildResult, Runner, RunResult, Verifier, time_module  # noqa: F401
from .settings import MeasureSettings, RPCSettings  # noqa: F401
