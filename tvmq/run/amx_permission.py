"""Linux hands out AMX tile state only on request: once per process, before the first tile instruction.

Without the request (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``) the first
``ldtilecfg`` kills the process with SIGILL. Every process that runs an AMX kernel (the local
measurement worker included) calls :func:`request` first; a refusal is one line, not a crash.
"""

from __future__ import annotations

import ctypes
import os
import platform

from ..errors import TvmqError
from ..targets import cpu_has

SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18

_answer: str | None = None  # "" once granted in this process, else why not


def _ask() -> str:
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"AMX needs Linux on x86_64, this is {platform.system()} on {platform.machine()}"
    if not cpu_has("amx_int8"):
        return "this CPU has no AMX (no amx_int8 in /proc/cpuinfo)"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0:
        err = ctypes.get_errno()
        return f"Linux refused AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM: {os.strerror(err)})"
    return ""


def request() -> str | None:
    """Ask Linux for AMX tile state (once per process); None when granted, else the reason in one line."""
    global _answer
    if _answer is None:
        _answer = _ask()
    return _answer or None


def require():
    """Like :func:`request`, but a refusal raises ``TvmqError``."""
    why = request()
    if why:
        raise TvmqError(f"cannot run AMX kernels here: {why}")
