import os

# Tests that time kernels use both cores; set before TVM's runtime starts.
os.environ.setdefault("TVM_NUM_THREADS", "2")


import pytest  # noqa: E402


def require_board_installed():
    """Install the emulated board if needed; skip where it cannot be (never under CI)."""
    from tvmq.edge import board as B
    from tvmq.errors import TvmqError

    try:
        B.ensure_installed(quiet=True)
    except TvmqError as e:
        if os.environ.get("CI"):  # CI installs the board first (make test): a failure there is a failure
            raise
        pytest.skip(f"emulated board not installable here: {e}")


@pytest.fixture(scope="module")
def private_board(tmp_path_factory):
    """An emulated board (one server) on a free tracker port with its own state file, so a board
    the user started (or a stale one on the default port) is neither used nor disturbed."""
    import socket

    from tvmq.edge import board as B
    from tvmq.run.settings import RPCSettings

    require_board_installed()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tmp_path_factory.mktemp("board_state")
    mp = pytest.MonkeyPatch()
    mp.setattr(B, "STATE_FILE", d / "board.json")
    mp.setattr(B, "LOG_DIR", d / "logs")
    B.up(n_servers=1, port=port, quiet=True)
    st = B.status()
    yield RPCSettings(tracker_host="127.0.0.1", tracker_port=port, key=st["key"])
    B.down(quiet=True)
    mp.undo()
