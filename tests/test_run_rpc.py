"""run/rpc.py and run/tracker.py without a board: failure classes and an absent tracker (pure Python)."""

import socket
import time

import pytest

from tvmq.errors import TvmqError
from tvmq.record.log import failure_kind
from tvmq.run.base import RunResult
from tvmq.run.rpc import BOARD_ERROR_PREFIX, RPCRunner, is_board_error
from tvmq.run.settings import RPCSettings


def test_board_failures_are_told_from_kernel_failures():
    board = RunResult("run_error", error=BOARD_ERROR_PREFIX + "not run: the tracker went away")
    kernel = RunResult("run_error", error="Segmentation fault")
    assert is_board_error(board) and not is_board_error(kernel)
    assert failure_kind(board.status, board.error) == "board" and failure_kind(kernel.status, kernel.error) == "kernel"
    assert failure_kind("ok", "") is None and failure_kind("wrong_result", "max abs error 3") == "kernel"


def test_no_tracker_is_one_line_naming_address_and_key():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = RPCRunner(RPCSettings(tracker_port=port, key="rasp3b", connect_timeout_s=2), emulated=False)
    t0 = time.monotonic()
    with pytest.raises(TvmqError) as ei:
        runner.check()
    assert time.monotonic() - t0 < 5 and f"127.0.0.1:{port}" in str(ei.value) and "rasp3b" in str(ei.value)
    assert runner.label == "rpc"


def test_tracker_address_must_be_host_port():
    with pytest.raises(TvmqError, match="--rpc-tracker must be HOST:PORT"):
        RPCSettings.parse("localhost", "rasp3b")


def test_a_dead_server_still_registered_is_skipped_for_a_live_one(monkeypatch):
    """The tracker may hand out a server that just died (its socket not yet seen closed): ask again."""
    from tvmq.run import tracker

    given = iter([("127.0.0.1", 9092, "dead"), ("127.0.0.1", 9093, "live")])
    monkeypatch.setattr(tracker, "_ask", lambda *a: next(given))

    def connect(url, port, matchkey, timeout):
        if port == 9092:
            raise RuntimeError("Check failed: (sock.Connect(addr)) is false: Connect to 127.0.0.1:9092 failed")
        return ("session", port)

    monkeypatch.setattr(tracker, "_connect", connect)
    sess, where = tracker.request_server("127.0.0.1", 1, "rasp3b", wait_s=5)
    assert sess == ("session", 9093) and where == "127.0.0.1:9093"


def test_only_dead_servers_fail_within_wait_naming_the_server(monkeypatch):
    from tvmq.run import tracker

    monkeypatch.setattr(tracker, "_ask", lambda *a: ("127.0.0.1", 9092, "dead"))

    def refuse(*a):
        raise RuntimeError("Connect to 127.0.0.1:9092 failed")

    monkeypatch.setattr(tracker, "_connect", refuse)
    t0 = time.monotonic()
    with pytest.raises(tracker.TrackerError, match=r"127\.0\.0\.1:9092 \(key 'rasp3b'\).*refused the session"):
        tracker.request_server("127.0.0.1", 1, "rasp3b", wait_s=1.5)
    assert time.monotonic() - t0 < 4
