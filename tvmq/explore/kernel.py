"""One config of a task made into everything the explorer shows: script, assembly, roofline."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..build.cross import asm
from ..build.lower import compile_mod
from ..errors import TvmqError, one_line
from ..record import log as recordlog
from ..templates import InvalidConfig, instantiate
from . import assembly, loopnest, roofline


@dataclass
class Kernel:
    label: str
    config: dict
    script: str  # annotated TVMScript
    outline: str  # its loops and blocks
    asm: dict  # assembly.summary()
    roof: dict  # roofline.roofline()
    record: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        t = recordlog.median_time(self.record) if self.record else float("inf")
        return None if t == float("inf") else t


def build(task, cfg: dict, label: str, record: dict | None = None, peak=None, asm_lines: int = 80) -> Kernel:
    """Instantiate, compile (for the task's target, cross-compiling when it is another CPU) and read."""
    try:
        op, sch = instantiate(task.space(), task.op_name, task.workload, task.params, cfg)
    except InvalidConfig as e:
        raise TvmqError(f"config not valid for {task.variant} on {task.workload.name}: {e}") from None
    script = loopnest.scheduled_script(sch, cfg)
    try:
        ex = compile_mod(sch.mod, task.target.tvm_target())
    except Exception as e:  # noqa: BLE001 - TVM raises many types; one line for the user
        raise TvmqError(f"compiling {label} failed: {one_line(e)}") from None
    summary = assembly.summary(asm(ex), task.target.arch, asm_lines)
    if peak is None:
        dot = bool(summary["kernel_counts"].get("vpdpbusd") or summary["kernel_counts"].get("sdot"))
        peak = roofline.estimate_peak(task.target.target, task.variant, dot)
    t = recordlog.median_time(record) if record else None
    roof = roofline.roofline(op, task.workload.flops, peak, t if t not in (None, float("inf")) else None)
    buffers = "; ".join(f"{a.name} {a.dtype}{list(a.shape)}" for a in op.args)
    return Kernel(label, cfg, script, loopnest.outline(script), summary, roof, record, {"buffers": buffers})
