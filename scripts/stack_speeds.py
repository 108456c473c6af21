"""Time one tuned kernel in fresh processes, from the main thread and from a thread (docs/TUNING.md,
"A kernel's speed followed the measuring process's stack address").

A kernel that spills registers can run at different speeds depending on the calling thread's stack
address; the main thread's differs per process (ASLR), a thread's does not. Each process rebuilds the
best config of WORKLOAD VARIANT in LOG and prints its median of 3 samples (ms).

    .venv/bin/python scripts/stack_speeds.py alexnet.conv4 int8 [--log autotune_logs/KIND/host.jsonl] [--processes 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def time_once(workload: str, variant: str, log: str, on_thread: bool) -> float:
    """This process: rebuild the log's best config and time it (ms) from the main thread or a thread."""
    import threading

    import numpy as np
    import tvm

    from tvmq.bench.jobs import build_kernel
    from tvmq.record.log import ranked, read
    from tvmq.run.verify import TaskVerifier
    from tvmq.targets import get_target
    from tvmq.task import Task
    from tvmq.workload import resolve

    task = Task.make(resolve(workload)[0], variant, get_target("host"))
    recs = [r for r in read(log, warn=False) if r.get("workload_key") == task.workload.key
            and r.get("variant") == variant]
    best = ranked(recs)[0]
    _, cfg, lib, _, _ = build_kernel(task, best, Path(tempfile.mkdtemp()), "k", warn=False)
    ver = TaskVerifier(task, 0)
    shape, dtype = ver.output_spec(cfg)
    mod, dev = tvm.runtime.load_module(lib), tvm.cpu(0)
    out = []

    def run():
        args = [tvm.runtime.tensor(a, dev) for a in ver.inputs(cfg)] + [tvm.runtime.tensor(np.zeros(shape, dtype), dev)]
        ev = mod.time_evaluator("main", dev, number=1, repeat=3, min_repeat_ms=30)
        out.append(float(np.median(ev(*args).results)) * 1e3)

    if on_thread:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
    return out[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload")
    p.add_argument("variant")
    p.add_argument("--log", default=None, help="records (default autotune_logs/KIND/host.jsonl of this machine)")
    p.add_argument("--processes", type=int, default=6)
    p.add_argument("--one", choices=["main", "thread"], help=argparse.SUPPRESS)  # a child process's job
    a = p.parse_args(argv)
    if a.log is None:
        from tvmq.machine import this_machine

        a.log = f"autotune_logs/{this_machine().kind}/host.jsonl"
    if a.one:
        print(f"{time_once(a.workload, a.variant, a.log, a.one == 'thread'):.3f}")
        return 0
    env = dict(os.environ, TVM_NUM_THREADS="2")
    for where in ("main", "thread"):
        ms = []
        for _ in range(a.processes):
            r = subprocess.run([sys.executable, __file__, a.workload, a.variant, "--log", a.log, "--one", where],
                               capture_output=True, text=True, env=env)
            if r.returncode:
                sys.exit(f"stack_speeds: a child process failed: {r.stderr.strip().splitlines()[-1:]}")
            ms.append(float(r.stdout.split()[-1]))
        label = "the main thread" if where == "main" else "a thread"
        print(f"{a.workload} {a.variant}, from {label}, {a.processes} processes: "
              + " ".join(f"{m:.2f}" for m in ms) + " ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
