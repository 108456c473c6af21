"""Load an export with the TVM runtime only and check it: no compiler, no TVM code generation.

``open_export`` reads the manifest, refuses a library from another TVM, for another target,
or whose bytes do not match the manifest's sha256, then loads ``lib.so`` with
``tvm.runtime.load_module`` (locally) or uploads it to an RPC board and loads it there.
Layer libraries are verified function by function against the numpy references of
``tvmq.ops`` (the tensor expressions are only declared, to get the reference; nothing is
built); a model export runs through ``tvm.runtime.vm.VirtualMachine``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TvmqError, one_line
from . import LIB_NAME, WEIGHTS_NAME
from . import manifest as M
from ..run import amx_permission, tracker
from ..ops import make_op
from ..workload import ConvWorkload
from ..machine import available_cores
from . import weights as W


@dataclass
class Export:
    """A checked, loaded export: ``mod`` (local or remote runtime module) on ``dev``."""

    path: Path
    manifest: dict
    mod: object
    dev: object
    where: str  # "local", "rpc" or "rpc-emulated"
    session: object = None
    warnings: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def functions(self) -> list[dict]:
        return self.manifest["functions"]

    def tensor(self, a: np.ndarray):
        import tvm  # lazy: heavy (TVM)

        return tvm.runtime.tensor(np.ascontiguousarray(a), self.dev)

    def close(self):
        self.mod = None
        self.session = None


def open_export(export_dir, rpc=None, expect_target: str | None = None, emulated: bool = False) -> Export:
    """Check and load ``export_dir``; ``rpc`` (RPCSettings) runs it on a board instead of here."""
    d = Path(export_dir)
    man = M.read(d)
    warns = M.check_versions(man)
    M.check_target(man, expect_target, remote=rpc is not None, remote_arch="aarch64" if emulated else None)
    M.check_files(d, man)
    lib = d / man["files"]["lib"]["path"]
    if rpc is None:
        import tvm  # lazy: heavy (TVM)

        if uses_amx(man):  # a tile instruction without the OS's permission kills the process (SIGILL)
            amx_permission.require()

        try:
            mod = tvm.runtime.load_module(str(lib))
        except Exception as e:  # noqa: BLE001
            raise TvmqError(f"the TVM runtime cannot load {lib}: {one_line(e)}") from None
        return Export(d, man, mod, tvm.cpu(0), "local", warnings=warns)

    sess = tracker.request(rpc.tracker_host, rpc.tracker_port, rpc.key, priority=rpc.priority,
                           session_timeout=rpc.session_timeout_s, wait_s=rpc.connect_timeout_s * 4,
                           connect_timeout=min(10.0, rpc.connect_timeout_s))
    name = f"tvmq_export_{man['files']['lib']['sha256'][:16]}.so"
    try:
        sess.upload(str(lib), target=name)
        mod = sess.load_module(name)
    except Exception as e:  # noqa: BLE001
        raise TvmqError(f"the board at {rpc.address} (key {rpc.key!r}) cannot load {lib}: {one_line(e)}") from None
    return Export(d, man, mod, sess.cpu(0), "rpc-emulated" if emulated else "rpc", session=sess, warnings=warns)


def uses_amx(man: dict) -> bool:
    """Whether any kernel of the export runs on AMX tiles (``conv2d_amx_*`` operators)."""
    return any(str(e.get("op", "")).startswith("conv2d_amx") for e in man.get("functions", []))


# -- layer libraries -------------------------------------------------------------------
def function_op(entry: dict):
    """The operator of one exported function (declared, not built), checked against the manifest."""

    wl = ConvWorkload.from_dict(entry["workload"], f"function {entry['name']}")
    kw = dict(entry["make_op"])
    if entry["op_variant"].startswith("codebook"):
        # Exports before planar packing existed read interleaved indices (planar 0).
        kw.setdefault("planar", entry.get("op_params", {}).get("planar", 0))
    op = make_op(entry["op_variant"], wl, **kw)
    got = [a.to_dict() for a in op.args]
    if got != entry["args"]:
        raise TvmqError(f"function {entry['name']!r}: the manifest's arguments {entry['args']} differ from the "
                        f"operator's {got} (manifest edited, or another tvmq?)")
    return op


def function(ex: Export, name: str):
    """A kernel of the library: a top-level function, or (model exports) one inside the VM executable."""
    try:
        return ex.mod[name]
    except Exception:  # noqa: BLE001  (not at top level: look in the imported library module)
        f = ex.mod.get_function(name, query_imports=True)
        if f is None:
            raise TvmqError(f"the library has no function {name!r} that its manifest lists") from None
        return f


def time_call(ex: Export, fname: str, args, repeat: int, min_repeat_ms: int = 10) -> list[float]:
    f = ex.mod.time_evaluator(fname, ex.dev, number=1, repeat=repeat, min_repeat_ms=min_repeat_ms)
    return [float(t) for t in f(*args).results]


def verify_layers(ex: Export, seed: int = 0, repeat: int = 0, only: list[str] | None = None) -> list[dict]:
    """Run each function on seeded random inputs, compare with numpy; optionally time it (layer libraries).

    For a model export the functions are its tvmq kernels, called inside the VM executable's library."""
    rows = []
    for i, entry in enumerate(ex.functions):
        if only and entry["name"] not in only:
            continue
        op = function_op(entry)
        rng = np.random.default_rng([seed, i])
        inputs = op.make_inputs(rng)
        oa = op.out_arg
        args = [ex.tensor(a) for a in inputs] + [ex.tensor(np.zeros(oa.shape, oa.dtype))]
        row = {"function": entry["name"], "variant": entry["variant"], "schedule": entry["schedule"]}
        try:
            function(ex, entry["name"])(*args)
            ex.dev.sync()
            out = args[-1].numpy()
        except Exception as e:  # noqa: BLE001
            rows.append(dict(row, ok=False, max_abs_err=None, error=one_line(e)))
            continue
        ok, err = op.check(out, inputs)
        row.update(ok=bool(ok), max_abs_err=err)
        if repeat and ex.kind == "layers":
            ts = time_call(ex, entry["name"], args, repeat)
            row["median_ms"] = float(np.median(ts)) * 1e3
            row["gflops"] = op.workload.flops / (row["median_ms"] * 1e-3) / 1e9
        rows.append(row)
    return rows


# -- models ------------------------------------------------------------------------------
class ModelRunner:
    """An exported model on the TVM runtime's VM, its weights loaded once onto the device."""

    def __init__(self, ex: Export):
        import tvm  # lazy: heavy (TVM)

        if ex.kind != "model":
            raise TvmqError(f"{ex.path} is a {ex.kind} export, not a model (export one with --model)")

        self.ex = ex
        self.info = ex.manifest["model"]
        self.params = []
        for a in W.load_each(ex.path / WEIGHTS_NAME, self.info["params"]):
            self.params.append(ex.tensor(a))
            del a  # one weight array in host memory at a time: copied to the device, then dropped
        try:
            self.vm = tvm.runtime.vm.VirtualMachine(ex.mod, ex.dev)
        except Exception as e:  # noqa: BLE001
            raise TvmqError(f"{ex.path / LIB_NAME} is not a Relax VM executable: {one_line(e)}") from None
        # Looked up once, the input tensor reused, and (local) both tensors read and written as numpy
        # views (DLPack): TVM's tensor(), copyfrom() and numpy() take 4-11 us each from Python, more
        # than the whole 3-conv digits network (4 us; AMD Zen 5).
        self._main = self.vm["main"]
        self._x = self._xv = None

    @property
    def input_shape(self) -> tuple:
        return tuple(self.info["input"]["shape"])

    def check_input(self, x: np.ndarray) -> np.ndarray:
        want = self.input_shape
        if tuple(x.shape) != want:
            raise TvmqError(f"input has shape {list(x.shape)}, the exported model takes {list(want)} "
                            f"(export with --batch {x.shape[0]} for another batch size)")
        return np.ascontiguousarray(x, dtype=self.info["input"]["dtype"])

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output for ``x`` (numpy in, numpy out)."""
        x = self.check_input(x)
        if self._x is None:
            self._x = self.ex.tensor(x)
            self._xv = np.from_dlpack(self._x) if self.ex.where == "local" else None
        elif self._xv is not None:
            np.copyto(self._xv, x)
        else:
            self._x.copyfrom(x)
        out = self._main(self._x, *self.params)
        return np.from_dlpack(out).copy() if self._xv is not None else out.numpy()

    def run_batches(self, x: np.ndarray) -> np.ndarray:
        """Any number of samples, in batches of the exported batch size (the last one padded)."""
        b = self.input_shape[0]
        outs = []
        for i in range(0, len(x), b):
            chunk = x[i:i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), chunk.dtype)])
            outs.append(self.run(chunk)[:n])
        return np.concatenate(outs)

    def latency(self, x: np.ndarray, repeat: int = 10, min_repeat_ms: int = 50) -> list[float]:
        """Seconds per inference (``repeat`` samples), timed by the runtime on the device."""
        self.vm.set_input("main", self.ex.tensor(self.check_input(x)), *self.params)
        f = self.vm.time_evaluator("invoke_stateful", self.ex.dev, number=1, repeat=repeat,
                                   min_repeat_ms=min_repeat_ms)
        return [float(t) for t in f("main").results]


def random_input(info: dict, seed: int = 0) -> np.ndarray:
    """The seeded random input of a model export: uniform in the manifest's input range."""
    lo, hi = info["input"].get("range", [-1.0, 1.0])
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, info["input"]["shape"]).astype(info["input"]["dtype"])


def set_threads(n: int | None):
    """Size this process's TVM thread pool to ``n`` (default: the cores available), without touching
    its environment (``runtime.config_threadpool``, big-core affinity as TVM's own default)."""
    import tvm  # lazy: heavy (TVM)


    tvm.get_global_func("runtime.config_threadpool")(1, int(n or available_cores()))


def say(msg: str):
    print(f"tvmq run: {msg}", file=sys.stderr, flush=True)


def now() -> float:
    return time.perf_counter()
