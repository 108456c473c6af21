"""The instructions that matter in a kernel, read from its generated assembly."""

from __future__ import annotations
from ..build.cross import asm, count_instructions
from ..build.lower import compile_mod
from ..templates import instantiate


def key_instructions(task, cfg: dict) -> dict[str, int]:
    """Compile ``cfg`` for the task's target and count its key instructions (thesis Tables 8.11-8.13)."""

    _, sch = instantiate(task.space(), task.op_name, task.workload, task.params, cfg)
    ex = compile_mod(sch.mod, task.target.tvm_target())
    return count_instructions(asm(ex), task.target.arch)


def summary(counts: dict[str, int]) -> str:
    """``fma_f32x4:78 smlal:12`` (non-zero counts only)."""
    return " ".join(f"{k}:{v}" for k, v in counts.items() if v) or "-"
