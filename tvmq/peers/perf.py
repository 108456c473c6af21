"""Hardware counters from ``perf stat`` for a built kernel, where the CPU and the kernel expose them.

``available()`` runs ``perf stat -e instructions true`` and says why not when it fails or reports
``<not supported>`` (common in VMs). ``kernel_counters`` runs the kernel ``iters`` times in a child
process under ``perf stat -x,`` and once with zero iterations, and subtracts the second from the
first, so the counts are the kernel's (not Python's or TVM's start-up).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

EVENTS = ("cycles", "instructions", "cache-references", "cache-misses", "L1-dcache-load-misses", "LLC-load-misses")

_CHILD = r"""
import os, sys, numpy as np, tvm
lib, inputs, shape, dtype, iters = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
with np.load(inputs) as z:
    arrs = [z[f"a{i}"] for i in range(len(z.files))]
dev = tvm.cpu(0)
args = [tvm.runtime.tensor(a, dev) for a in arrs]
out = tvm.runtime.tensor(np.zeros(tuple(int(s) for s in shape.split("x")), dtype), dev)
f = tvm.runtime.load_module(lib)["main"]
for _ in range(iters):
    f(*args, out)
"""


def available() -> tuple[bool, str]:
    """(True, "") if ``perf stat`` counts instructions here, else (False, why)."""
    perf = shutil.which("perf")
    if not perf:
        return False, "the perf tool is not installed"
    try:
        p = subprocess.run([perf, "stat", "-x,", "-e", "instructions", "true"], capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"perf stat failed to run ({e})"
    if p.returncode != 0:
        return False, f"perf stat failed: {(p.stderr.strip().splitlines() or ['exit ' + str(p.returncode)])[-1]}"
    counts = parse(p.stderr)
    if counts.get("instructions") is None:
        why = "<not supported>" if "not supported" in p.stderr else "<not counted>"
        return False, (f"perf stat reports instructions as {why} (hardware counters are not exposed, e.g. in this "
                       f"VM; perf_event_paranoid={_paranoid()})")
    return True, ""


def _paranoid() -> str:
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return f.read().strip()
    except OSError:
        return "?"


def parse(text: str) -> dict:
    """``perf stat -x,`` output -> {event: count or None}."""
    out = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        value, event = parts[0].strip(), parts[2].strip()
        if not event:
            continue
        event = event.split(":")[0].split("/")[-1] if "/" in event else event.split(":")[0]
        try:
            out[event] = float(value)
        except ValueError:
            out[event] = None  # <not supported> / <not counted>
    return out


def derived(c: dict, iters: int) -> dict:
    """Per-run counts and the ratios the report shows (IPC, miss rates)."""
    d = {f"{k}_per_run": (v / iters if v is not None else None) for k, v in c.items()}
    cyc, ins = c.get("cycles"), c.get("instructions")
    d["ipc"] = ins / cyc if cyc and ins is not None else None
    refs, miss = c.get("cache-references"), c.get("cache-misses")
    d["cache_miss_rate"] = miss / refs if refs and miss is not None else None
    return d


def kernel_counters(lib_path: str, inputs_npz: str, out_shape, out_dtype: str, threads: int, iters: int = 50,
                    events=EVENTS, timeout_s: float = 300.0) -> dict:
    """Counters of ``iters`` runs of the kernel (minus a zero-run baseline); {"error": ...} on failure."""
    env = dict(os.environ, TVM_NUM_THREADS=str(threads))
    shape = "x".join(str(int(s)) for s in out_shape)

    def one(n):
        cmd = ["perf", "stat", "-x,", "-e", ",".join(events), sys.executable, "-c", _CHILD, lib_path, inputs_npz,
               shape, out_dtype, str(n)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
        if p.returncode != 0:
            raise RuntimeError((p.stderr.strip().splitlines() or ["perf stat failed"])[-1])
        return parse(p.stderr)

    try:
        full, base = one(iters), one(0)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)[:300]}
    counts = {k: (full[k] - base.get(k, 0.0) if full.get(k) is not None and base.get(k) is not None else None)
              for k in full}
    return {"iters": iters, "counts": counts, **derived(counts, iters)}
