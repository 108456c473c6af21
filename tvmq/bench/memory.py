"""Peak resident memory of one side of a whole-model bench: what loading and running the model adds.

``peak_of`` loads and runs the model in a fresh process that has imported only its framework.
``PeakMemory`` there resets the kernel's high-water mark of resident memory (Linux
``/proc/self/clear_refs``). On exit it reports how far memory rose above the resident memory at
the start: the runtime or session, its weights, and the intermediate tensors of the runs inside.
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except OSError:
        pass
    return None


class PeakMemory:
    """``with PeakMemory() as m: ...``; then ``m.bytes``: the peak resident memory inside the block less
    the resident memory at its start, or None where the OS cannot tell (not Linux, or a sandbox that
    forbids resetting the high-water mark)."""

    @staticmethod
    def supported() -> bool:
        with PeakMemory() as m:
            pass
        return m.bytes is not None

    def __init__(self):
        self.base: int | None = None
        self.bytes: int | None = None

    def __enter__(self) -> "PeakMemory":
        try:
            Path("/proc/self/clear_refs").write_text("5")  # "5": reset the high-water mark to the current RSS
        except OSError:
            return self
        self.base = _status_bytes("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        hwm = _status_bytes("VmHWM")
        if self.base is not None and hwm is not None:
            self.bytes = max(0, hwm - self.base)


KINDS = ("tvmq", "onnx", "relax")


def peak_of(kind: str, path, shape, threads: int, timeout_s: float = 600.0) -> int | None:
    """Peak resident memory rise (bytes) of loading and running one model in a fresh process:
    ``tvmq`` an export folder, ``onnx`` an ONNX file on onnxruntime, ``relax`` a compiled Relax
    library. A fresh process, because memory that an earlier step freed is reused without showing."""
    import json
    import subprocess
    import sys

    args = [sys.executable, "-m", "tvmq.bench.memory", kind, str(path), f"--threads={threads}",
            "--shape=" + ",".join(str(int(d)) for d in shape)]
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        print(f"tvmq bench: warning: peak memory of {kind} {path} not measured: {tail[:200]}", file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])["peak_bytes"]


def _load_and_run(kind: str, path: str, shape: tuple, threads: int, runs: int = 3) -> int | None:
    import numpy as np

    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    if kind == "onnx":
        import onnxruntime  # noqa: F401  (the framework is imported before memory is counted)

        from .model import _ort_session  # the session exactly as the bench times it

        with PeakMemory() as mem:
            sess, name = _ort_session(path, threads)
            for _ in range(runs):
                sess.run(None, {name: x})
        return mem.bytes
    import tvm.runtime.vm  # noqa: F401

    from ..export.runtime import set_threads

    set_threads(threads)
    if kind == "tvmq":
        from ..export import runtime as RT

        with PeakMemory() as mem:
            mr = RT.ModelRunner(RT.open_export(path))
            for _ in range(runs):
                mr.run(x)
        return mem.bytes
    with PeakMemory() as mem:
        vm = tvm.runtime.vm.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu(0))
        xt = tvm.runtime.tensor(x, tvm.cpu(0))
        for _ in range(runs):
            vm["main"](xt).numpy()
    return mem.bytes


def main(argv=None) -> int:
    """``python -m tvmq.bench.memory KIND PATH --shape N,C,H,W --threads T``: prints {"peak_bytes": ...}."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m tvmq.bench.memory")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("path")
    p.add_argument("--shape", required=True)
    p.add_argument("--threads", type=int, required=True)
    a = p.parse_args(argv)
    shape = tuple(int(d) for d in a.shape.split(","))
    print(json.dumps({"peak_bytes": _load_and_run(a.kind, a.path, shape, a.threads)}))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
