"""A static performance model: time a kernel from its assembly, with no board (``--measure model``).

The estimate, for one compiled kernel:

1. the hottest innermost loop of its assembly (``build.loops.innermost``) goes through LLVM's
   machine-code analyser with the core's scheduling model (``llvm-mca -mcpu=cortex-a53``): cycles
   per iteration, in-order dispatch included;
2. the loop's work per iteration is counted from its arithmetic (``fmla v.4s``: 4 multiply-adds,
   ``smlal v.8h``: 8, ``vfmadd ps`` on zmm: 16, ``vpdpbusd`` on zmm: 64, ...), so the layer's
   multiply-adds / work per iteration gives the iterations, and iterations x cycles the compute time
   over the cores that the parallel loop keeps busy;
3. a memory floor: the bytes the layer must move at least (weights, input, output) over the
   board's memory bandwidth; the estimate is the larger of the two (a roofline).

It ranks; it does not measure. Records made from it say ``modelled`` and never choose a schedule.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..build.loops import innermost
from ..build.result import BuildResult
from ..errors import TvmqError
from ..machine import Machine
from ..space.base import workload_context
from ..space.nest import loop_features
from ..variants import get as get_variant
from .base import Runner, RunResult

LLVM_MCA = "llvm-mca"


@dataclass(frozen=True)
class CoreModel:
    """What the estimate needs of a machine."""

    name: str
    triple: str
    mcpu: str  # the scheduling model llvm-mca uses
    ghz: float
    cores: int
    dram_gbps: float


# Raspberry Pi 3: 4 Cortex-A53 at 1.2 GHz, LPDDR2-900 on a 32-bit bus (about 2 GB/s in practice).
MODELS = {
    "cortex-a53": CoreModel("Raspberry Pi 3 (Cortex-A53)", "aarch64-linux-gnu", "cortex-a53", 1.2, 4, 2.0),
    "sapphirerapids": CoreModel("Xeon (Sapphire/Emerald Rapids), 2 vCPU", "x86_64-linux-gnu", "sapphirerapids",
                                3.0, 2, 20.0),
    "skylake-avx512": CoreModel("Xeon (Skylake-SP), 2 vCPU", "x86_64-linux-gnu", "skylake-avx512", 3.0, 2, 20.0),
}

# Multiply-adds per instruction, by mnemonic pattern and vector width (lanes of the destination).
_MACS = [
    (re.compile(r"\bfmla\s+v\d+\.4s"), 4), (re.compile(r"\bsdot\s+v\d+\.4s"), 16),
    (re.compile(r"\b[su]mlal2?\s+v\d+\.4s"), 4), (re.compile(r"\b[su]mlal2?\s+v\d+\.8h"), 8),
    (re.compile(r"\b[su]mull2?\s+v\d+\.4s"), 4), (re.compile(r"\b[su]mull2?\s+v\d+\.8h"), 8),
    (re.compile(r"\bvfmadd\d+ps\b.*%zmm"), 16), (re.compile(r"\bvfmadd\d+ps\b.*%ymm"), 8),
    (re.compile(r"\bvfmadd\d+ps\b.*%xmm"), 4), (re.compile(r"\bvpdpbusd\b.*%zmm"), 64),
    (re.compile(r"\bvpdpbusd\b.*%ymm"), 32), (re.compile(r"\bvpmaddubsw\b.*%zmm"), 64),
    (re.compile(r"\btdpbusd\b"), 16 * 16 * 64),
]
_DIRECTIVE = re.compile(r"^\s*\.|^\s*[\w.$]+:\s*$")


def model_for(target) -> CoreModel:
    """The core model of a target (by its ``mcpu``); a one-line error names the known ones."""
    mcpu = target.target.get("mcpu", "")
    if mcpu not in MODELS:
        raise TvmqError(f"no performance model for -mcpu={mcpu!r}; known: {sorted(MODELS)}")
    return MODELS[mcpu]


def check_mca() -> str:
    path = shutil.which(LLVM_MCA)
    if not path:
        raise TvmqError("llvm-mca is not installed (Debian package 'llvm'; `make setup` installs it): "
                        "--measure model needs it")
    return path


def macs_per_iteration(lines: list[str]) -> int:
    return sum(n for ln in lines for p, n in _MACS if p.search(ln))


def mca_cycles(lines: list[str], model: CoreModel, iterations: int = 200) -> float:
    """llvm-mca's cycles per iteration of a loop body (labels and directives dropped)."""
    body = "\n".join(ln for ln in lines if not _DIRECTIVE.match(ln))
    p = subprocess.run([check_mca(), f"-mtriple={model.triple}", f"-mcpu={model.mcpu}", f"-iterations={iterations}"],
                       input=body, capture_output=True, text=True, timeout=60)
    m = re.search(r"Total Cycles:\s+(\d+)", p.stdout)
    if p.returncode != 0 or not m:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise TvmqError(f"llvm-mca -mcpu={model.mcpu} could not read the loop: {tail[:200]}")
    return int(m.group(1)) / iterations


@dataclass(frozen=True)
class Estimate:
    seconds: float
    compute_s: float
    memory_s: float
    cycles_per_iter: float
    macs_per_iter: int
    iterations: float


def estimate(asm_text: str, arch: str, macs: float, min_bytes: float, model: CoreModel, threads: int,
             balance: float = 1.0) -> Estimate:
    """Seconds for a kernel doing ``macs`` multiply-adds and moving at least ``min_bytes``.

    ``balance``: the share of ``threads`` that the parallel loop keeps busy (1 = even split).
    """
    loop = innermost(asm_text, arch)
    if loop is None:
        raise TvmqError("no loop in the kernel's assembly to model")
    per = macs_per_iteration(loop.lines)
    if per == 0:
        raise TvmqError("the kernel's hottest loop has no multiply-add the model counts")
    cyc = mca_cycles(loop.lines, model)
    iters = macs / per
    cores = max(1.0, min(threads, model.cores) * balance)
    compute = iters * cyc / (model.ghz * 1e9) / cores
    memory = min_bytes / (model.dram_gbps * 1e9)
    return Estimate(max(compute, memory), compute, memory, cyc, per, iters)


def balance_of(cfg: dict, ctx: dict, threads: int) -> float:
    """The busy share of ``threads`` over the parallel iterations the config makes (last round idle)."""
    idle = loop_features(cfg, ctx, threads)[3]
    return 1.0 - idle if math.isfinite(idle) else 1.0


class ModelRunner(Runner):
    """A runner that times nothing: each built kernel gets the model's estimate (status ``ok``, its
    record labelled ``modelled``). Its records rank candidates; they are never measurements."""

    label = "model"

    def __init__(self, model: CoreModel, task):
        check_mca()
        self.model, self.task = model, task
        wl = task.workload
        self.macs = wl.flops / 2
        v = get_variant(task.variant)
        bits = task.params.get("bits", 8 if v.integer else 32)
        self.min_bytes = wl.bytes(weight_bits=bits, act_bytes=1 if v.integer else 4,
                                  out_bytes=1 if v.integer else 4)["total"]
        self.ctx = workload_context(wl)

    def run(self, builds: list[BuildResult], verifier, settings) -> list[RunResult]:
        out = []
        for b in builds:
            if b.status != "ok":
                out.append(RunResult(b.status, error=b.error, compile_s=b.compile_s))
                continue
            try:
                with open(b.asm_path) as f:
                    text = f.read()
                # The board runs every core it has (its runtime, not this host's --threads, sets that).
                threads = int(self.task.target.target.get("num-cores") or settings.threads)
                e = estimate(text, self.task.target.arch, self.macs, self.min_bytes, self.model, threads,
                             balance_of(b.config, self.ctx, threads))
                out.append(RunResult("ok", [e.seconds], compile_s=b.compile_s))
            except (TvmqError, OSError, TypeError) as e:
                out.append(RunResult("run_error", error=f"model: {e}", compile_s=b.compile_s))
        return out


def model_machine(model: CoreModel, target) -> Machine:
    """Who 'measured' a modelled record: the model of the core, never a machine."""
    return Machine(kind=f"model-{model.mcpu}", vendor="model", model=model.name, llvm_cpu=model.mcpu,
                   arch=target.arch, cores=model.cores, extra={"modelled": True, "ghz": model.ghz,
                                                               "dram_gbps": model.dram_gbps})
