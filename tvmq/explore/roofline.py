"""The bytes a kernel reads (weights, indices, codebook, activations) against a roofline.

The peak is an ESTIMATE, labelled so: vector lanes from the target (tvmq's peak code,
``tvmq.peers.peak_kernels.vector_lanes``) x 2 flops per FMA x FMAs per cycle x clock x cores; int8 peak 4x
that with a dot-product instruction (VNNI / sdot). Measuring the real peak takes minutes
(``python -m tvmq bench`` does it); ``--peak-gflops`` and ``--bandwidth-gbs`` override the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..peers.peak_kernels import vector_lanes
from ..variants import is_integer

# Assumed clocks of the estimate: the Zen 4 machine of the committed logs measured ~3.6 GHz; a Pi 3's A53 runs at 1.2.
CLOCK_GHZ = {"x86_64": 3.6, "aarch64": 1.2}
FMA_PER_CYCLE = 1  # one full-width FMA per cycle per core (Zen 4 AVX-512, Cortex-A53 NEON ~1)
BANDWIDTH_GBS = 30.0  # assumed DRAM copy bandwidth (the logs' machine measured 30-38 GB/s on 2 threads)
# Argument names -> what they are (tvmq/ops names its placeholders this way).
ROLES = {"data": "activations", "weight": "weights", "indices": "indices", "codebook": "codebook"}


@dataclass
class Peak:
    gflops: float
    bandwidth_gbs: float
    label: str


def estimate_peak(target: dict, variant: str, dot_product: bool, peak_gflops: float | None = None,
                  bandwidth_gbs: float | None = None) -> Peak:
    """The compute and memory roof for ``variant`` on ``target`` (a TVM target dict)."""
    if peak_gflops:
        return Peak(peak_gflops, bandwidth_gbs or BANDWIDTH_GBS, "given with --peak-gflops")
    lanes = vector_lanes(target)
    clock = CLOCK_GHZ["aarch64" if "aarch64" in str(target.get("mtriple", "")) else "x86_64"]
    cores = int(target.get("num-cores", 1) or 1)
    fp32 = lanes * 2 * FMA_PER_CYCLE * clock * cores
    int8 = is_integer(variant) and dot_product
    g = fp32 * 4 if int8 else fp32
    how = (f"ESTIMATE: {lanes} fp32 lanes x 2 flops x {FMA_PER_CYCLE} FMA/cycle x {clock} GHz x {cores} cores"
           + (" x 4 (int8 dot product)" if int8 else "") + f"; bandwidth {bandwidth_gbs or BANDWIDTH_GBS} GB/s"
           + (" (given)" if bandwidth_gbs else " (assumed)") + "; measure with `python -m tvmq bench`")
    return Peak(round(g, 1), bandwidth_gbs or BANDWIDTH_GBS, how)


def traffic(op) -> dict[str, int]:
    """Compulsory bytes per kernel call, by role: each input read once, the output written once."""
    out = {}
    for a in op.args[:-1]:
        role = ROLES.get(a.name, a.name)
        out[role] = out.get(role, 0) + int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
    o = op.out_arg
    out["output"] = int(np.prod(o.shape)) * np.dtype(o.dtype).itemsize
    return out


def roofline(op, flops: int, peak: Peak, measured_s: float | None) -> dict:
    """Bytes, arithmetic intensity, the attainable GFLOPS and (when measured) the share of it."""
    t = traffic(op)
    total = sum(t.values())
    ai = flops / total
    roof = min(peak.gflops, ai * peak.bandwidth_gbs)
    got = flops / measured_s / 1e9 if measured_s else None
    return {"bytes": t, "total_bytes": total, "intensity": ai, "roof_gflops": roof,
            "bound": "compute" if roof >= peak.gflops else "memory", "peak": peak,
            "gflops": got, "pct_roof": 100 * got / roof if got else None}


def text(r: dict) -> str:
    """The roofline as a few lines."""
    parts = ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in r["bytes"].items())
    lines = [f"bytes per call (compulsory): {parts}; total {r['total_bytes'] / 1024:.1f} KiB",
             f"arithmetic intensity {r['intensity']:.1f} flop/byte -> {r['bound']}-bound, "
             f"roof {r['roof_gflops']:.0f} GFLOPS (peak {r['peak'].gflops:.0f} GFLOPS, "
             f"{r['peak'].bandwidth_gbs:.0f} GB/s)",
             f"peak: {r['peak'].label}"]
    if r["gflops"]:
        lines.append(f"measured {r['gflops']:.1f} GFLOPS = {r['pct_roof']:.0f}% of the roof")
    return "\n".join(lines)
