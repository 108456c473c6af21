"""AMX int8 vs tvmq's VNNI int8 on alexnet conv3-conv5, plus the AMX int8 and bf16 peaks (issue 18).

Every kernel runs in tvmq's local measurement worker (which asks Linux for AMX tile state) and is
checked exactly against numpy before its time counts. The VNNI rows are the int8 space's default
schedule and the best ``int8`` VNNI record of ``--vnni-log``, both compiled for ``--target``.

    .venv/bin/python scripts/amx_bench.py --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import tvm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvmq.build.lower import compile_mod  # noqa: E402
from tvmq.run.base import BuildResult  # noqa: E402
from tvmq.run.fixed import FixedVerifier as Fixed  # noqa: E402
from tvmq.run.local import LocalRunner  # noqa: E402
from tvmq.run.settings import MeasureSettings  # noqa: E402
from tvmq.space import Space  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.templates import amx, amx_bf16, amx_int8, instantiate  # noqa: E402
from tvmq.workload import suites  # noqa: E402

# (rows, m_tiles, n_tiles, flat); rows None = out_w (13 on alexnet conv3-conv5), within an output row
TILINGS = [(None, 1, 2, False), (None, 1, 4, False), (16, 1, 4, True), (16, 1, 6, True), (16, 2, 2, True),
           (16, 3, 1, True)]
BF16_TILINGS = [(None, 1, 4, False), (16, 2, 2, True)]
PEAK_ITERS = 200_000


def build(mod, target, tmp) -> BuildResult:
    path = tempfile.mkstemp(suffix=".so", dir=tmp)[1]
    compile_mod(mod, target).export_library(path)
    return BuildResult(config={}, status="ok", lib_path=path)


def best_int8_record(wl, log: Path):
    best = None
    for line in log.read_text().splitlines() if log.exists() else []:
        r = json.loads(line)
        if r.get("variant") == "int8" and r.get("status") == "ok" and r["workload"]["name"] == wl.name \
                and r.get("config", {}).get("dot") == "vnni":
            if best is None or np.median(r["times"]) < np.median(best["times"]):
                best = r
    return best


def measure(runner, lib, verifier, threads):
    res = runner.run([lib], verifier, MeasureSettings(threads=threads, repeat=7, min_repeat_ms=50, timeout_s=60))[0]
    return (res.median, res.status, res.error)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--layers", default="conv3,conv4,conv5")
    ap.add_argument("--target", default="sapphirerapids")
    ap.add_argument("--vnni-log", default="autotune_logs/amd-znver4-2c/host.jsonl",
                    help="records whose best int8 VNNI config is rebuilt for --target and timed too")
    args = ap.parse_args()
    ti = get_target(args.target)
    target = ti.target
    wls = {w.name: w for w in suites()["alexnet"]}
    runner = LocalRunner()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in [int(t) for t in args.threads.split(",")]:
            for kind, word in (("int8", 0x01010101), ("bf16", 0x3F803F80)):  # every element 1
                peak = build(tvm.IRModule({"main": amx.peak_func(PEAK_ITERS, threads, kind)}), target, tmp)
                src = np.full((threads, 4, 16, 16), word, "int32")
                _, acc_dtype, k = amx.DOT[kind]
                t, status, err = measure(runner, peak, Fixed([src], np.full(src.shape, PEAK_ITERS * k, acc_dtype)),
                                         threads)
                ops = threads * PEAK_ITERS * 4 * 16 * 16 * k * 2
                rows.append(dict(kernel=f"amx_peak {kind}", layer="-", threads=threads, status=status, error=err,
                                 gops=ops / t / 1e9 if status == "ok" else None))
            for name in args.layers.split(","):
                wl = wls[name]
                ops = 2 * wl.n * wl.c_out * wl.out_h * wl.out_w * wl.c_in * wl.kh * wl.kw
                ins = amx_int8.make_inputs(wl, np.random.default_rng(0))
                ver = Fixed(ins, amx_int8.reference(wl, ins))
                for r, m_tiles, n_tiles, flat in TILINGS:
                    r = r or wl.out_w
                    if amx.check(wl, r, m_tiles, n_tiles, flat):
                        continue
                    f = amx_int8.conv2d_amx_int8(wl, r, m_tiles, n_tiles, flat=flat)
                    t, status, err = measure(runner, build(tvm.IRModule({"main": f}), target, tmp), ver, threads)
                    rows.append(dict(kernel=f"amx{'f' if flat else ''} rows={r} m={m_tiles} n={n_tiles}", layer=name,
                                     threads=threads,
                                     status=status, error=err, gops=ops / t / 1e9 if status == "ok" else None))
                bins = amx_bf16.make_inputs(wl, np.random.default_rng(0))
                bver = Fixed(bins, amx_bf16.reference(wl, bins), atol=1e-3 * np.sqrt(wl.c_in * wl.kh * wl.kw),
                             out_dtype="float32")
                for r, m_tiles, n_tiles, flat in BF16_TILINGS:
                    r = r or wl.out_w
                    f = amx_bf16.conv2d_amx_bf16(wl, r, m_tiles, n_tiles, flat)
                    t, status, err = measure(runner, build(tvm.IRModule({"main": f}), target, tmp), bver, threads)
                    rows.append(dict(kernel=f"bf16 amx{'f' if flat else ''} rows={r} m={m_tiles} n={n_tiles}",
                                     layer=name, threads=threads, status=status, error=err,
                                     gops=ops / t / 1e9 if status == "ok" else None))
                space = Space.load(wl, "int8", features=ti.features())
                rec = best_int8_record(wl, Path(args.vnni_log))
                for label, cfg, params in [("default", space.default, {})] + (
                        [(f"best record of {args.vnni_log}", rec["config"], rec["params"])] if rec else []):
                    op, sch = instantiate(space, "int8", wl, params, cfg)
                    ins = op.make_inputs(np.random.default_rng(0))
                    lib = build(sch.mod, target, tmp)
                    t, status, err = measure(runner, lib, Fixed(ins, op.reference(ins)), threads)
                    rows.append(dict(kernel=f"vnni int8 ({label})", layer=name, threads=threads, status=status,
                                     error=err, gops=ops / t / 1e9 if status == "ok" else None))
                print(json.dumps(rows[-1]), flush=True)
    runner.close()
    print(f"CPU: {_cpu_name()}")
    print("| layer | threads | kernel | GOPS | status |\n|---|---|---|---|---|")
    for r in rows:
        g = f"{r['gops']:.0f}" if r["gops"] else "-"
        print(f"| {r['layer']} | {r['threads']} | {r['kernel']} | {g} | {r['status']} {r['error'] or ''} |")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} vCPU"
    return "unknown"


if __name__ == "__main__":
    main()
