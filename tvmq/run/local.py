"""Local runner: each candidate runs in a separate worker process with a timeout.

A hung or crashed candidate kills only its worker (recorded as ``timeout`` or
``run_error``); the next candidate gets a fresh one.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..errors import one_line
from . import amx_permission
from .base import BuildResult, Runner, RunResult, time_module
from .settings import MeasureSettings

_INPUTS: dict = {}
_TIMER: list = []  # the worker's one timing thread (a ThreadPoolExecutor), made on first use


def on_timer_thread(fn, *args):
    """``fn(*args)`` on this process's timing thread, one thread for all calls.

    Why not the main thread: a kernel that spills registers runs at up to 2x different speeds depending on
    the calling thread's stack address (its spill slots against the data's addresses), and ASLR draws the
    main thread's stack anew for every process, so the same config read 3.7, 5.1 or 7-8 ms in different
    worker processes (alexnet conv4 int8, Zen 3; all 3.7 with ASLR off). A thread's stack sits at the same
    offset in every process: 5.2 ms in each of 8. One thread, not one per call: TVM's thread pool is per
    calling thread.
    """
    if not _TIMER:
        from concurrent.futures import ThreadPoolExecutor

        _TIMER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="tvmq-timer"))
    return _TIMER[0].submit(fn, *args).result()


def _init_worker(threads: int):
    # Runs in the runner's worker process (the pool's initializer), never in the calling process; the
    # worker's TVM thread pool reads this when it first starts, which is after this point.
    os.environ["TVM_NUM_THREADS"] = str(threads)
    # On an AMX CPU, ask Linux for tile state before any kernel runs (harmless for other kernels); a
    # refusal only means an AMX candidate dies with SIGILL in this worker, recorded as run_error.
    amx_permission.request()


def run_in_worker(lib_path: str, inputs_path: str, out_shape, out_dtype, settings_dict: dict):
    """Load, run once, time (inside the worker); returns (output, seconds per repeat)."""
    import tvm  # lazy: imported in the measurement worker, not by whoever imports this module


    if inputs_path not in _INPUTS:
        with np.load(inputs_path) as z:
            _INPUTS.clear()
            _INPUTS[inputs_path] = [z[f"a{i}"] for i in range(len(z.files))]
    mod = tvm.runtime.load_module(lib_path)
    return on_timer_thread(time_module, mod, tvm.cpu(0), _INPUTS[inputs_path], (tuple(out_shape), out_dtype),
                           MeasureSettings(**settings_dict))


class LocalRunner(Runner):
    """Measures on this machine, one candidate at a time (timings must not overlap)."""

    label = "local"

    def __init__(self):
        self._pool = None
        self._pool_key = None
        self._tmp = tempfile.TemporaryDirectory(prefix="tvmq-inputs-")
        self._inputs: tuple | None = None  # (the arrays, their file): the arrays held, so never confused
        self._n_inputs = 0

    def _executor(self, settings):
        from tvm.support.popen_pool import PopenPoolExecutor  # lazy: TVM stays out of start-up until a run

        key = (settings.threads, settings.timeout_s)
        if self._pool is None or self._pool_key != key:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = PopenPoolExecutor(max_workers=1, timeout=settings.timeout_s, initializer=_init_worker,
                                           initargs=(settings.threads,))
            self._pool_key = key
        return self._pool

    def _inputs_file(self, arrays) -> str:
        """The file the worker reads ``arrays`` from: written once per inputs object, under a name never
        reused (the worker caches by name). Keyed by identity with the object held, not by ``id()``: a
        freed list's id comes back for the next task's inputs, which then ran with the old task's arrays
        (a wrong-shape TypeError, or a wrong result)."""
        if self._inputs is not None and self._inputs[0] is arrays:
            return self._inputs[1]
        path = os.path.join(self._tmp.name, f"in{self._n_inputs}.npz")
        self._n_inputs += 1
        np.savez(path, **{f"a{i}": a for i, a in enumerate(arrays)})
        if self._inputs is not None:
            os.unlink(self._inputs[1])
        self._inputs = (arrays, path)
        return path

    def run(self, builds: list[BuildResult], verifier, settings) -> list[RunResult]:
        results = []
        for b in builds:
            if b.status != "ok":
                results.append(RunResult(status=b.status, error=b.error, compile_s=b.compile_s))
                continue
            results.append(self._run_one(b, verifier, settings))
        return results

    def _run_one(self, b, verifier, settings) -> RunResult:
        shape, dtype = verifier.output_spec(b.config)
        path = self._inputs_file(verifier.inputs(b.config))
        fut = self._executor(settings).submit(run_in_worker, b.lib_path, path, list(shape), dtype, settings.to_dict())
        try:
            out, times = fut.result()
        except TimeoutError:
            return RunResult("timeout", error=f"exceeded {settings.timeout_s:.0f}s", compile_s=b.compile_s)
        except Exception as e:  # noqa: BLE001 - a crash is data
            return RunResult("run_error", error=f"{type(e).__name__}: {one_line(e)}", compile_s=b.compile_s)
        ok, err = verifier.check(b.config, out)
        if not ok:
            return RunResult("wrong_result", error=f"max abs error {err:.3g} vs reference", max_abs_err=err,
                             compile_s=b.compile_s)
        return RunResult("ok", times=times, max_abs_err=err, compile_s=b.compile_s)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._tmp.cleanup()
