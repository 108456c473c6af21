"""``tvmq targets``: this machine's identity and features, the targets, and whether each runs here."""

import json

from ..machine import available_cores, save_peaks, this_machine
from ..run import amx_permission
from ..targets import cpu_flags, get_target, target_names
from ..peers import peak as peak_mod
from ..run.local import LocalRunner
from ..run.settings import MeasureSettings

# /proc/cpuinfo flag -> the name users know, for the features that decide which kernels are fast.
NOTABLE = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
           "avx512vbmi": "VBMI",
           "avx512_fp16": "AVX-512 FP16", "avx512_bf16": "AVX-512 BF16", "amx_int8": "AMX-INT8",
           "amx_bf16": "AMX-BF16", "asimd": "NEON", "asimddp": "NEON dot product", "i8mm": "I8MM"}


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--measure-peak", action="store_true",
                   help="measure this machine's fp32 and int8 peak (all cores) and keep them with its records")


def run(args):
    m = this_machine()
    if args.measure_peak:
        m = _measure_peak(m)
    rows = []
    for name in target_names():
        t = get_target(name)
        why = t.local_problem()
        rows.append(dict(name=name, runner=t.runner, local=why is None, why=why or "", target=t.target,
                         description=t.description))
    if args.json:
        print(json.dumps(dict(machine=m.to_dict(), targets=rows), indent=2))
        return 0
    print(machine_lines(m))
    print(f"\n{'name':14} {'measured':8} {'runs here':9}  target")
    for r in rows:
        here = "yes" if r["local"] else "no (RPC)"
        print(f"{r['name']:14} {r['runner']:8} {here:9}  {json.dumps(r['target'], sort_keys=True)}")
        print(f"{'':14} {r['description']}")
    print(amx_line())
    return 0


def machine_lines(m) -> str:
    """This machine as records name it: kind, CPU, LLVM's name, cores, features, peaks."""
    have = set(m.features)
    feats = ", ".join(v for k, v in NOTABLE.items() if k in have) or "none of " + ", ".join(NOTABLE.values())
    if "avx2" in have and not have & {"avx512f", "avx_vnni"}:  # say what an AVX2-only x86 CPU lacks
        feats += " (no AVX-512, no int8 dot product: 8 fp32 lanes, int8 through vpmaddubsw/vpmaddwd)"
    int8 = f"int8 {m.peak_int8_gops:.0f} GOPS" if m.peak_int8_gops else "int8 not measured (no VNNI peak kernel here)"
    peak = (f"fp32 {m.peak_fp32_gflops:.0f} GFLOPS, {int8} (measured)"
            if m.peak_fp32_gflops else "not measured (tvmq targets --measure-peak)")
    return (f"this machine: {m.kind}\n  cpu: {m.vendor} {m.model!r}, LLVM cpu {m.llvm_cpu}, {m.arch}, "
            f"{m.cores} cores\n  features: {feats}\n  peak: {peak}\n  records: autotune_logs/{m.kind}/")


def _measure_peak(m):

    threads = available_cores()
    runner = LocalRunner()
    try:
        p = peak_mod.measure(get_target("host"), runner, MeasureSettings(threads=threads), [threads], bandwidth=False)
    finally:
        runner.close()
    fp32 = (p["fp32"].get(threads) or {}).get("gflops")
    int8 = (p["int8"].get(threads) or {}).get("gops") if isinstance(p["int8"], dict) else None
    path = save_peaks(m, fp32, int8, threads)
    print(f"tvmq targets: peak at {threads} threads written to {path}")
    this_machine.cache_clear()
    return this_machine()


def amx_line() -> str:
    """Whether this CPU has Intel AMX and whether Linux grants this process its tile state."""
    amx = sorted(f for f in cpu_flags() if f.startswith("amx_"))
    if not amx:
        return "AMX: this CPU has none"
    why = amx_permission.request()
    return f"AMX: this CPU has {' '.join(amx)}; Linux {'refuses tile state: ' + why if why else 'grants tile state'}"
