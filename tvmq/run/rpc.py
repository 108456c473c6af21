"""Measure built candidates on a remote board through a TVM RPC tracker.

Each candidate gets its own RPC session (``-timeout=`` set, so the board kills
a kernel that hangs), uploads its ``.so``, is verified against numpy on the
board's output, then timed by the board (``time_module``).  Several servers
under one key measure in parallel: one worker per registered server.

Failures never lose finished results:

* a candidate whose session ends (the server died, or the kernel crashed it)
  is ``run_error`` with the reason; the runner then waits (bounded) for a server
  with the key to be back and goes on;
* if none comes back within ``wait_s``, the remaining candidates are
  ``run_error`` with an ``"rpc: "`` reason, ``self.lost`` says why, and the
  next ``run`` raises TvmqError (after ``connect_timeout_s``) unless the board is back;
* a candidate that does not answer within its budget is ``timeout``.

Errors that come from the board rather than from the kernel start with
``"rpc: "`` (see ``is_board_error``): a tuner may retry those candidates.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

from ..errors import TvmqError, one_line
from .base import BOARD_ERROR_PREFIX, BuildResult, Runner, RunResult, Verifier, time_module
from .settings import RPCSettings
from . import tracker


def is_board_error(result: RunResult) -> bool:
    """Did this candidate fail because of the board/tracker, not its own code?"""
    return result.status == "run_error" and result.error.startswith(BOARD_ERROR_PREFIX)


@dataclass
class _Job:
    idx: int
    build: BuildResult
    t_submit: float = field(default_factory=time.monotonic)
    t_run: float | None = None  # when its session was obtained
    result: RunResult | None = None
    board_failed: bool = False  # the session failed: maybe the kernel, maybe the board
    no_server: str | None = None  # no server within wait_s: the board is gone
    abandoned: bool = False
    board: str | None = None  # the server the tracker gave it
    tries: int = 0  # a candidate whose board failed under it is run once more (on any board with the key)
    done: threading.Event = field(default_factory=threading.Event)


class RPCRunner(Runner):
    """Runs candidates on RPC servers registered under ``rpc.key`` at ``rpc.address``.

    Parameters
    ----------
    rpc : RPCSettings
        Tracker address, key, priority, session and connect timeouts.
    emulated : bool, optional
        Label times as emulated; default: whether ``rpc`` is this project's
        emulated board (``tvmq.edge.is_emulated``).
    parallel : int, optional
        At most this many candidates at once; default: the servers registered.
    wait_s : float
        How long to wait for a free server, or for one to come back after a
        server died, before giving up on the remaining candidates.
    upload_slack_s : float
        Seconds a session gets on top of ``settings.timeout_s`` for upload and load.
    """

    def __init__(self, rpc: RPCSettings, *, emulated: bool | None = None, parallel: int | None = None,
                 wait_s: float = 120.0, upload_slack_s: float = 10.0, verbose: bool = False):
        if emulated is None:
            from ..edge import is_emulated  # edge (the emulated board) sits above the runners

            emulated = is_emulated(rpc)
        self.rpc = rpc
        self.emulated = bool(emulated)
        self.label = "rpc-emulated" if self.emulated else "rpc"
        self.parallel = parallel
        self.wait_s = wait_s
        self.upload_slack_s = upload_slack_s
        self.verbose = verbose
        self.lost: str | None = None

    # -- the board -----------------------------------------------------------------
    def _where(self) -> str:
        return f"the RPC tracker at {self.rpc.address}, key {self.rpc.key!r}"

    def check(self, wait_s: float | None = None) -> int:
        """How many servers have the key; TvmqError naming address and key if the
        tracker is unreachable or no server registers within ``wait_s``
        (default ``rpc.connect_timeout_s``)."""

        wait = self.rpc.connect_timeout_s if wait_s is None else wait_s
        t0 = time.monotonic()
        try:
            tracker.summary(self.rpc.tracker_host, self.rpc.tracker_port, timeout=min(10.0, wait))
        except tracker.TrackerError as e:
            raise TvmqError(f"{e} (RPC key {self.rpc.key!r}); is the tracker running? "
                            f"(for the emulated board: python -m tvmq edge up)") from None
        try:
            return tracker.wait_for_key(self.rpc.tracker_host, self.rpc.tracker_port, self.rpc.key,
                                        wait_s=max(0.0, wait - (time.monotonic() - t0)))
        except tracker.TrackerError as e:
            raise TvmqError(str(e)) from None

    def _session_timeout(self, settings) -> float:
        return float(min(self.rpc.session_timeout_s, settings.timeout_s + self.upload_slack_s))

    # -- one candidate ---------------------------------------------------------------
    def _measure(self, job: _Job, verifier: Verifier, settings):

        b = job.build
        try:
            try:
                sess, job.board = tracker.request_server(self.rpc.tracker_host, self.rpc.tracker_port, self.rpc.key,
                                       priority=self.rpc.priority, session_timeout=self._session_timeout(settings),
                                       wait_s=self.wait_s, connect_timeout=min(10.0, self.rpc.connect_timeout_s))
            except tracker.TrackerError as e:
                job.no_server = str(e)
                job.result = RunResult("run_error", error=BOARD_ERROR_PREFIX + str(e), compile_s=b.compile_s)
                return
            job.t_run = time.monotonic()
            try:
                name = f"tvmq_{os.getpid()}_{job.idx}.so"
                sess.upload(b.lib_path, target=name)
                rmod = sess.load_module(name)
                dev = sess.cpu(0)
                inputs = verifier.inputs(b.config)
                out, times = time_module(rmod, dev, inputs, verifier.output_spec(b.config), settings)
                del rmod
            except Exception as e:  # noqa: BLE001  (TVM raises TVMError/RuntimeError)
                msg = one_line(e)
                if "RPCSessionTimeoutError" in str(e) or "session has expired" in str(e):
                    job.result = RunResult("timeout", error=f"the board ended the session after "
                                           f"{self._session_timeout(settings):g} s: {msg}", compile_s=b.compile_s)
                else:
                    job.board_failed = True  # maybe the kernel crashed it; the board check decides
                    job.result = RunResult("run_error", error=msg, compile_s=b.compile_s)
                return
            finally:
                del sess
            ok, err = verifier.check(b.config, out)
            if not ok:
                job.result = RunResult("wrong_result", error=f"output differs from numpy (max abs error {err:g})",
                                       max_abs_err=err, compile_s=b.compile_s)
            else:
                job.result = RunResult("ok", times=list(times), max_abs_err=err, compile_s=b.compile_s)
        except Exception as e:  # noqa: BLE001  (verifier bugs etc.: record, do not lose the run)
            job.result = RunResult("run_error", error=f"{type(e).__name__}: {one_line(e)}", compile_s=b.compile_s)
        finally:
            if job.result is not None:
                job.result.board = job.board
            job.done.set()

    # -- the batch --------------------------------------------------------------------
    def run(self, builds: list[BuildResult], verifier: Verifier, settings) -> list[RunResult]:
        results: list[RunResult | None] = [None] * len(builds)
        todo = []
        for i, b in enumerate(builds):
            if b.status != "ok":
                results[i] = RunResult(b.status, error=b.error, compile_s=b.compile_s)
            elif not b.lib_path or not os.path.isfile(b.lib_path):
                results[i] = RunResult("run_error", error=f"built library {b.lib_path!r} is missing",
                                       compile_s=b.compile_s)
            else:
                todo.append(i)
        if not todo:
            return results
        # Fail fast (bounded) when the tracker or the key is not there at all.
        n_servers = self.check()
        self.lost = None
        parallel = max(1, min(self.parallel or n_servers, n_servers, len(todo)))
        budget = self._session_timeout(settings) + 10.0  # the board itself should end it first
        pending = list(todo)
        retry: dict[int, int] = {}
        active: list[_Job] = []
        while pending or active:
            while pending and len(active) < parallel and not self.lost:
                idx = pending.pop(0)
                job = _Job(idx, builds[idx], tries=retry.get(idx, 0))
                threading.Thread(target=self._measure, args=(job, verifier, settings), daemon=True,
                                 name=f"tvmq-rpc-{job.idx}").start()
                active.append(job)
            if self.lost and not active:
                break
            time.sleep(0.05)
            for job in list(active):
                if job.done.is_set():
                    active.remove(job)
                    results[job.idx] = job.result
                    if self.verbose:
                        r = job.result
                        print(f"tvmq rpc: #{job.idx} {r.status} {r.median * 1e3 if r.ok else ''} {r.error}",
                              file=sys.stderr)
                    if job.no_server and not self.lost:
                        self.lost = job.no_server
                        print(f"tvmq rpc: giving up on {self._where()}: {job.no_server}", file=sys.stderr)
                    elif job.board_failed and not self.lost:
                        self._board_back_or_lost()
                        if self.lost:  # the server died under this candidate and stayed away
                            job.result.error = (BOARD_ERROR_PREFIX + "the RPC server went away during this "
                                                f"candidate ({job.result.error}) and did not come back")
                        elif job.tries == 0:  # the board or the kernel? Run it once more, on any board
                            print(f"tvmq rpc: #{job.idx}: the session on {job.board} failed ({job.result.error}); "
                                  "running it again", file=sys.stderr)
                            results[job.idx] = None
                            pending.insert(0, job.idx)
                            retry[job.idx] = 1
                elif job.t_run is not None and time.monotonic() - job.t_run > budget:
                    job.abandoned = True  # its thread stays blocked on the socket until the board ends it
                    active.remove(job)
                    results[job.idx] = RunResult("timeout", error=f"no answer from the board within {budget:g} s",
                                                 compile_s=job.build.compile_s)
        for i in pending:
            results[i] = RunResult("run_error", error=BOARD_ERROR_PREFIX + f"not run: {self.lost}",
                                   compile_s=builds[i].compile_s)
        return results

    def _board_back_or_lost(self):
        """After a failed session: wait (bounded) for a server with the key; else mark the board lost."""
        try:
            self.check(wait_s=self.wait_s)
        except TvmqError as e:
            self.lost = f"{e}"
            print(f"tvmq rpc: giving up on {self._where()}: {e}", file=sys.stderr)
