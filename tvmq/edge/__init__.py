"""The emulated edge board: a TVM RPC tracker and Cortex-A53 RPC servers under
qemu-user, on 127.0.0.1 only.  See ``board`` and docs/EDGE.md."""

from .board import (  # noqa: F401
    EDGE_DIR,
    down,
    ensure_installed,
    ensure_up,
    is_emulated,
    status,
    up,
    wait_for_servers,
)
