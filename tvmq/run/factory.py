"""The runner a target needs: local, or RPC (the emulated board when no tracker is given)."""

from __future__ import annotations

from .local import LocalRunner
from .rpc import RPCRunner
from .settings import RPCSettings


def make_runner(target, rpc: RPCSettings | None = None):
    """A ``LocalRunner`` for local targets; an ``RPCRunner`` for ``rpc`` or, for an RPC target without one,
    for the emulated board (brought up if needed, and said so on stderr)."""
    if rpc is None and target.runner == "rpc":
        from ..edge import board  # the emulated board sits above the runners: imported only when it is needed

        rpc = board.ensure_up(key=target.rpc_key)
    if rpc is not None:
        return RPCRunner(rpc)
    target.check_local()
    return LocalRunner()
