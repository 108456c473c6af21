"""Time model exports against each other in one sitting: the tvmq side of `bench --export` (each run in a
process of its own, TVM_NUM_THREADS threads), rounds interleaved so that a noisy shared machine hits every
export alike; onnxruntime fp32 on the first export's float model once per round (and, with --ort-int8,
onnxruntime's own static int8 quantization of it).

    python scripts/bench_export_fusion.py --rounds 3 --repeat 20 DIR_A DIR_B ...

Prints one line per export: median (min-max) of the rounds' medians, ms, and the same for onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def one(side: str, d: str, threads: int, repeat: int) -> float:
    env = dict(os.environ, TVM_NUM_THREADS=str(threads))
    p = subprocess.run([sys.executable, "-m", "tvmq.bench.model", side, d, f"--threads={threads}",
                        f"--repeat={repeat}"], env=env, capture_output=True, text=True, check=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return r[f"{side}_ms"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--ort-int8", action="store_true")
    a = ap.parse_args()
    times: dict[str, list] = {d: [] for d in a.dirs}
    ort: list = []
    ort8: list = []
    for _ in range(a.rounds):
        for d in a.dirs:
            times[d].append(one("tvmq", d, a.threads, a.repeat))
        if not a.no_ort:
            ort.append(one("onnxruntime", a.dirs[0], a.threads, a.repeat))
        if a.ort_int8:
            ort8.append(one("onnxruntime_int8", a.dirs[0], a.threads, a.repeat))
    for name, t in list(times.items()) + ([("onnxruntime fp32", ort)] if ort else []) + \
            ([("onnxruntime int8", ort8)] if ort8 else []):
        t = sorted(t)
        p = 4 if t[len(t) // 2] < 0.1 else 3  # a few microseconds (digits): one more place
        print(f"{name:40s} {t[len(t) // 2]:9.{p}f} ms  ({t[0]:.{p}f}-{t[-1]:.{p}f}, {len(t)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
