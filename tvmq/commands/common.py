"""Flags shared by commands, each mapping one to one onto a settings record (``run.settings``)."""

from __future__ import annotations

import argparse

from ..run.settings import MeasureSettings, RPCSettings
from ..run.factory import make_runner  # noqa: F401  (the commands take it from here with the flags)

_MS = MeasureSettings()
_RPC = RPCSettings()


def add_workload_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workload", help="suite or one layer: alexnet, large, llc, alexnet.conv3")
    g.add_argument("--workload-file", help="JSON list of layer objects (see tvmq/workload.py)")


def add_measure_args(p):
    g = p.add_argument_group("measurement (MeasureSettings)")
    g.add_argument("--number", type=int, default=_MS.number, help="runs per timing sample")
    g.add_argument("--repeat", type=int, default=_MS.repeat, help="timing samples, all recorded")
    g.add_argument("--min-repeat-ms", type=int, default=_MS.min_repeat_ms, help="minimum duration of one sample")
    g.add_argument("--timeout", type=float, default=_MS.timeout_s, help="seconds before a candidate is killed")
    g.add_argument("--flush-cache", action=argparse.BooleanOptionalAction, default=None,
                   help="cold weights: flush every argument but the input from the caches before each sample, one "
                        "run per sample (default: on for tune --model on a local target, as kernels run in a network; off "
                        "otherwise)")
    g.add_argument("--threads", type=int, default=_MS.threads, help="TVM runtime threads")
    g.add_argument("--build-workers", type=int, default=_MS.build_workers, help="parallel compile processes")
    g.add_argument("--build-timeout", type=float, default=_MS.build_timeout_s, help="seconds before a compile is abandoned")
    g.add_argument("--seed", type=int, default=_MS.seed, help="seed of inputs and of the search")


def measure_settings(a, cold: bool = False) -> MeasureSettings:
    """The flags' MeasureSettings; ``cold``: ``--flush-cache``'s default where it is not given."""
    if getattr(a, "flush_cache", False) is None:
        a = argparse.Namespace(**{**vars(a), "flush_cache": cold})
    return MeasureSettings.from_flags(a)


def add_rpc_args(p):
    g = p.add_argument_group("RPC (RPCSettings)")
    g.add_argument("--rpc-tracker", help="HOST:PORT of a TVM RPC tracker (edge targets; default: the emulated board)")
    g.add_argument("--rpc-key", help="device key registered at the tracker (default: the target's)")
    g.add_argument("--rpc-priority", type=int, default=_RPC.priority)
    g.add_argument("--rpc-session-timeout", type=float, default=_RPC.session_timeout_s)


def rpc_settings(a, target) -> RPCSettings | None:
    return RPCSettings.from_flags(a, target)
