"""Shared by the tests/test_explore_*.py modules: a tiny layer's task and the committed records slice."""

from pathlib import Path

from tvmq.targets import TargetInfo
from tvmq.task import Task
from tvmq.workload import ConvWorkload

SLICE = Path(__file__).parent / "data" / "records_slice.jsonl"  # 44 real lines of autotune_logs/amd-znver4-2c/compare/host.jsonl
X86_ZEN4 = {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}
A53 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a53", "mattr": ["+neon"], "num-cores": 4}


def tiny_task(variant: str, target: dict = X86_ZEN4, arch: str = "x86_64") -> Task:
    """A 16->32 channel 3x3 layer on 8x8: compiles in well under a second."""
    wl = ConvWorkload("tiny", n=1, c_in=16, h=8, w=8, c_out=32, kh=3, kw=3, stride=(1, 1), pad=(1, 1, 1, 1))
    return Task.make(wl, variant, TargetInfo("host", target, arch))
