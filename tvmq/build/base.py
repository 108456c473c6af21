"""Builders: turn (task, config) into a shared library, in worker processes.

A config the template rejects is ``invalid``; a compile that raises or
exceeds its time is ``build_error``. Neither is ever timed.
"""

from __future__ import annotations

import os
import tempfile
import time

from .result import BuildResult
from ..space import Space
from ..templates import InvalidConfig, instantiate
from ..workload import ConvWorkload
from ..errors import TvmqError
from .cross import asm, count_instructions
from .lower import compile_mod


def build_one(task_dict: dict, cfg: dict, out_dir: str) -> dict:
    """Compile one candidate (runs in a worker process); returns BuildResult fields."""

    t0 = time.time()
    wl = ConvWorkload.from_dict(task_dict["workload"])
    space = Space.load(wl, task_dict["op"], features=set(task_dict["features"]))  # the space the tuner sampled
    try:
        _, sch = instantiate(space, task_dict["op"], wl, task_dict["params"], cfg)
    except InvalidConfig as e:
        return dict(status="invalid", error=str(e), compile_s=time.time() - t0)
    try:
        ex = compile_mod(sch.mod, task_dict["target"])
        fd, path = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
        if task_dict.get("cross_cc"):
            ex.export_library(path, cc=task_dict["cross_cc"])
        else:
            ex.export_library(path)
    except Exception as e:  # noqa: BLE001 - any compiler failure is data
        return dict(status="build_error", error=f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:400]}",
                    compile_s=time.time() - t0)
    out = dict(status="ok", lib_path=path, compile_s=time.time() - t0)
    try:  # the key instructions, counted now so that the best kernel is never compiled again to count them
        text = asm(ex)
    except TvmqError:  # not an LLVM CPU module: no assembly to count
        return out
    out["instructions"] = count_instructions(text, task_dict["arch"])
    if task_dict.get("asm"):
        with open(path + ".s", "w") as f:
            f.write(text)
        out["asm_path"] = path + ".s"
    return out


class Builder:
    """Compiles candidates in ``workers`` separate processes, each bounded by ``timeout_s``."""

    def __init__(self, workers: int = 2, timeout_s: float = 120.0, out_dir: str | None = None, asm: bool = False):
        self.workers = workers
        self.asm = asm  # also keep each kernel's assembly (for the performance model)
        self.timeout_s = timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="tvmq-build-") if out_dir is None else None
        self.out_dir = out_dir or self._tmp.name
        self._pool = None

    def _executor(self):
        from tvm.support.popen_pool import PopenPoolExecutor  # lazy: TVM stays out of start-up until a build

        if self._pool is None:
            self._pool = PopenPoolExecutor(max_workers=self.workers, timeout=self.timeout_s)
        return self._pool

    def build(self, task, configs: list[dict]) -> list[BuildResult]:
        td = dict(task.to_dict(), asm=self.asm, arch=task.target.arch)
        futures = [self._executor().submit(build_one, td, cfg, self.out_dir) for cfg in configs]
        out = []
        for cfg, fut in zip(configs, futures):
            try:
                d = fut.result()
            except TimeoutError:
                d = dict(status="build_error", error=f"compile exceeded {self.timeout_s:.0f}s")
            except Exception as e:  # noqa: BLE001 - a crashed worker is a failed build
                d = dict(status="build_error", error=f"{type(e).__name__}: {str(e)[:300]}")
            out.append(BuildResult(config=cfg, **d))
        return out

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
