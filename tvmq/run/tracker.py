"""Bounded-time talk with a TVM RPC tracker.

``tvm.rpc.connect_tracker`` retries a refused connection for 60 s and its
``request`` blocks for ever when no server has the key; here every step has a
deadline and every failure names the tracker's address and the key.
"""

from __future__ import annotations

import socket
import struct
import time

from ..errors import TvmqError


class TrackerError(TvmqError):
    """The tracker cannot be reached, or gave no server in time."""


def _open(host: str, port: int, timeout: float) -> socket.socket:
    from tvm.rpc import base  # lazy: TVM is heavy and stays out of start-up

    addr = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:  # refused, unreachable, DNS, timed out
        raise TrackerError(f"cannot reach the RPC tracker at {addr}: {e.strerror or e}") from None
    try:
        sock.settimeout(timeout)
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", base.recvall(sock, 4))[0]
    except OSError as e:
        sock.close()
        raise TrackerError(f"the RPC tracker at {addr} did not answer within {timeout:g} s: {e}") from None
    if magic != base.RPC_TRACKER_MAGIC:
        sock.close()
        raise TrackerError(f"{addr} is not a TVM RPC tracker")
    return sock


def summary(host: str, port: int, timeout: float = 10.0) -> dict:
    """The tracker's summary: ``{"queue_info": {key: {"free", "pending"}}, "server_info": [...]}``."""
    from tvm.rpc import base  # lazy: TVM is heavy and stays out of start-up

    sock = _open(host, port, timeout)
    try:
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        value = base.recvjson(sock)
    except OSError as e:
        raise TrackerError(f"the RPC tracker at {host}:{port} did not answer within {timeout:g} s: {e}") from None
    finally:
        sock.close()
    if value[0] != base.TrackerCode.SUCCESS:
        raise TrackerError(f"the RPC tracker at {host}:{port} answered {value!r}")
    return value[1]


def servers(summ: dict, key: str) -> int:
    """How many servers registered ``key`` (idle or busy)."""
    return sum(1 for s in summ.get("server_info", []) if s.get("key") == f"server:{key}")


def keys(summ: dict) -> list[str]:
    return sorted({s["key"].split(":", 1)[1] for s in summ.get("server_info", []) if ":" in s.get("key", "")})


def wait_for_key(host: str, port: int, key: str, wait_s: float, n: int = 1, poll_s: float = 0.5) -> int:
    """Wait until at least ``n`` servers registered ``key``; return how many.

    Raises TrackerError naming the address and key after ``wait_s`` seconds.
    """
    deadline = time.monotonic() + wait_s
    last = None
    while True:
        try:
            summ = summary(host, port, timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            got = servers(summ, key)
            if got >= n:
                return got
            last = (f"{got} of {n} server(s) with key {key!r} registered at the RPC tracker {host}:{port} "
                    f"after {wait_s:.3g} s (keys there: {keys(summ) or 'none'})")
        except TrackerError as e:
            last = f"{e} (waited {wait_s:.3g} s for key {key!r})"
        if time.monotonic() >= deadline:
            raise TrackerError(last)
        time.sleep(poll_s)


def request(host: str, port: int, key: str, **kw):
    """``request_server``'s session alone."""
    return request_server(host, port, key, **kw)[0]


def request_server(host: str, port: int, key: str, *, priority: int = 1, session_timeout: float = 0,
                   wait_s: float = 60.0, connect_timeout: float = 10.0):
    """Ask the tracker for a server with ``key`` and connect to it: (RPCSession, the server's "host:port").

    Waits at most ``wait_s`` for a free server (the tracker queues the request);
    on timeout the request is withdrawn (the socket closes) and TrackerError says so.
    A server that refuses the connection is asked again within ``wait_s``: a server
    that just died stays registered until the tracker sees its socket close.
    """
    deadline = time.monotonic() + wait_s
    while True:
        url, sport, matchkey = _ask(host, port, key, priority, max(1.0, deadline - time.monotonic()), connect_timeout)
        try:
            return _connect(url, sport, matchkey, session_timeout), f"{url}:{sport}"
        except Exception as e:  # noqa: BLE001  (TVM raises RuntimeError/TVMError)
            last = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            if time.monotonic() + 0.5 >= deadline:
                raise TrackerError(f"the RPC server {url}:{sport} (key {key!r}) given by the tracker {host}:{port} "
                                   f"refused the session: {last}") from None
            time.sleep(0.5)


def _connect(url: str, port: int, matchkey: str, session_timeout: float):
    from tvm import rpc  # lazy: TVM is heavy and stays out of start-up

    return rpc.connect(url, port, matchkey, session_timeout)


def _ask(host: str, port: int, key: str, priority: int, wait_s: float, connect_timeout: float):
    """One REQUEST to the tracker: the (host, port, match key) of a free server with ``key``."""
    from tvm.rpc import base  # lazy: TVM is heavy and stays out of start-up

    sock = _open(host, port, connect_timeout)
    try:
        base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", priority])
        sock.settimeout(wait_s)
        value = base.recvjson(sock)
    except TimeoutError:
        raise TrackerError(f"no free RPC server with key {key!r} at the tracker {host}:{port} "
                           f"within {wait_s:g} s") from None
    except OSError as e:
        raise TrackerError(f"lost the RPC tracker at {host}:{port} while requesting key {key!r}: {e}") from None
    finally:
        sock.close()
    if value[0] != base.TrackerCode.SUCCESS:
        raise TrackerError(f"the RPC tracker at {host}:{port} refused key {key!r}: {value!r}")
    return value[1]
