"""The machine that measures: its identity, ISA features and peaks, and the kind records are matched by.

A tuning record holds for the machine that measured it. Every record carries a ``Machine``
(``to_dict``); records count as measurements only for the same ``kind``. Other kinds are a
first guess, chosen by ``similarity``. Records written before machines were recorded
(schema 1) get one from their target (``from_legacy_record``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

# /proc/cpuinfo flag names of the ISA extensions that change which kernels are fast.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "i8mm", "sve")
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}
# The peaks `tvmq targets --measure-peak` wrote, one file per machine kind (read when known).
PEAKS_DIR = Path(__file__).resolve().parent.parent / "autotune_logs"


@dataclass(frozen=True)
class Machine:
    """Who measured a time: a CPU (local), or a board behind an RPC tracker."""

    kind: str
    vendor: str = "unknown"
    model: str = "unknown"
    llvm_cpu: str = "unknown"
    arch: str = "unknown"
    features: tuple = ()
    cores: int = 0
    peak_fp32_gflops: float | None = None
    peak_int8_gops: float | None = None
    emulated: bool = False
    board: str | None = None
    legacy: bool = False  # inferred from a schema-1 record's target, not detected
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Machine":
        known = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in known}
        d["features"] = tuple(d.get("features", ()))
        return cls(**d)

    @property
    def vector_bits(self) -> int:
        f = set(self.features)
        if "avx512f" in f:
            return 512
        if "avx2" in f:
            return 256
        return 128

    @property
    def vector_registers(self) -> tuple[int, int] | None:
        """(fp32 lanes, vector registers) of the widest vector ISA; None when the features do not say."""
        if self.vector_bits > 128:
            return self.vector_bits // 32, 32 if self.vector_bits == 512 else 16
        return (4, 32) if self.arch == "aarch64" else None

    def describe(self) -> str:
        """One line: kind, model, LLVM CPU, cores, the notable ISA extensions."""
        where = f" via {self.board}" if self.board else ""
        emu = " (EMULATED)" if self.emulated else ""
        return (f"{self.kind}: {self.vendor} {self.model!r}, LLVM cpu {self.llvm_cpu}, {self.cores} cores, "
                f"{' '.join(self.features) or 'features unknown'}{where}{emu}")


def _cpuinfo() -> dict:
    """First processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                if out:
                    break
                continue
            k, _, v = line.partition(":")
            out.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return out


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; containers often have fewer than the host)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def kind_name(vendor: str, llvm_cpu: str, cores: int) -> str:
    return f"{vendor}-{llvm_cpu}-{cores}c"


@lru_cache(maxsize=1)
def this_machine() -> Machine:
    """The CPU this process runs on, with its peaks when they were measured here before."""
    import tvm  # heavy; only to ask LLVM for its name of this CPU

    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    vendor = _VENDORS.get(info.get("vendor_id", ""), info.get("vendor_id", "") or
                          ("arm" if platform.machine() == "aarch64" else "unknown"))
    llvm_cpu = str(tvm.target.codegen.llvm_get_system_cpu())
    cores = available_cores()
    m = Machine(kind=kind_name(vendor, llvm_cpu, cores), vendor=vendor,
                model=info.get("model name", info.get("Hardware", "unknown")), llvm_cpu=llvm_cpu,
                arch=platform.machine(), features=tuple(f for f in ISA_FLAGS if f in flags), cores=cores)
    return with_known_peaks(m)


def peaks_file(kind: str) -> Path:
    return PEAKS_DIR / kind / "machine.json"


def with_known_peaks(m: Machine) -> Machine:
    """``m`` with the fp32/int8 peaks saved for its kind, if any."""
    p = peaks_file(m.kind)
    if not p.exists():
        return m
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return m
    return replace(m, peak_fp32_gflops=d.get("peak_fp32_gflops"), peak_int8_gops=d.get("peak_int8_gops"))


def save_peaks(m: Machine, fp32_gflops: float | None, int8_gops: float | None, threads: int) -> Path:
    p = peaks_file(m.kind)
    p.parent.mkdir(parents=True, exist_ok=True)
    d = dict(m.to_dict(), peak_fp32_gflops=fp32_gflops, peak_int8_gops=int8_gops, peak_threads=threads)
    p.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    return p


def board_machine(target, rpc_key: str | None, address: str | None, emulated: bool) -> Machine:
    """A board behind RPC: named by its key and core (the emulator is one kind of its own)."""
    t = target.target
    cpu = t.get("mcpu", "unknown")
    kind = f"qemu-{cpu}" if emulated else f"board-{rpc_key or target.rpc_key}-{cpu}"
    return Machine(kind=kind, vendor="board", model=target.description[:60], llvm_cpu=cpu, arch=target.arch,
                   features=tuple(a.lstrip("+") for a in t.get("mattr", [])), cores=int(t.get("num-cores", 0) or 0),
                   emulated=emulated, board=f"{rpc_key or target.rpc_key}@{address}" if address else None)


def for_target(target, runner_label: str | None = None, address: str | None = None) -> Machine:
    """The machine whose records count for ``target``: this CPU for local targets, else the board.

    ``runner_label`` ``rpc-emulated`` means the emulated board; RPC targets with no runner
    (export) mean the real board, so emulated records never choose their schedules.
    """
    if target.runner == "local":
        return this_machine()
    return board_machine(target, target.rpc_key, address, emulated=runner_label == "rpc-emulated")


def for_runner(target, runner) -> Machine:
    """``for_target`` for the runner that will measure (its label, and its tracker's address over RPC)."""
    return for_target(target, runner.label, getattr(getattr(runner, "rpc", None), "address", None))


def default_log(machine: Machine, target) -> Path:
    """Where ``tune`` appends records by default: one folder per machine kind."""
    return Path("autotune_logs") / machine.kind / f"{target.name}.jsonl"


def from_legacy_record(rec: dict) -> Machine:
    """The machine of a schema-1 record, as far as its target says (host targets named the CPU)."""
    t = rec.get("target", {})
    cores = int(t.get("num-cores", 0) or 0)
    cpu = t.get("mcpu", "unknown")
    if rec.get("runner", "local").startswith("rpc"):
        emulated = bool(rec.get("emulated"))
        kind = f"qemu-{cpu}" if emulated else f"board-unknown-{cpu}"
        return Machine(kind=kind, vendor="board", llvm_cpu=cpu, arch="aarch64" if "aarch64" in t.get("mtriple", "")
                       else "unknown", cores=cores, emulated=emulated, legacy=True)
    if rec.get("target_name", "host") == "host":  # host records name the CPU (older ones had no target_name)
        vendor = "amd" if cpu.startswith("znver") else "intel"
        feats = _LEGACY_FEATURES.get(cpu, ())
        return Machine(kind=kind_name(vendor, cpu, cores), vendor=vendor, llvm_cpu=cpu, arch="x86_64",
                       features=feats, cores=cores, legacy=True)
    # A fixed target (e.g. server = skylake-avx512) says nothing about the CPU that ran it.
    return Machine(kind="unknown", arch="x86_64", cores=cores, legacy=True)


# What the CPUs of the committed schema-1 logs had (their host records name LLVM's CPU only).
_LEGACY_FEATURES = {
    "znver4": ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi", "avx512_bf16"),
    "znver5": ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi", "avx512_bf16",
               "avx_vnni"),
}


def similarity(a: Machine, b: Machine) -> float:
    """How alike two machines are for schedules (1 = same kind): ISA overlap, vector width, cores, vendor."""
    if a.kind == b.kind:
        return 1.0
    fa, fb = set(a.features), set(b.features)
    isa = len(fa & fb) / len(fa | fb) if fa | fb else 0.0
    same_arch = 1.0 if a.arch == b.arch else 0.0
    vec = 1.0 if a.vector_bits == b.vector_bits else 0.5
    cores = 1.0 / (1.0 + abs(math.log2(max(a.cores, 1) / max(b.cores, 1))))
    vendor = 1.0 if a.vendor == b.vendor else 0.8
    return round(same_arch * (0.5 * isa + 0.2 * vec + 0.2 * cores + 0.1 * vendor) * (0.9 if b.legacy else 1.0), 4)


def machine_features(m: Machine) -> list[float]:
    """What a cost model needs to tell machines apart: vector width, cores, VNNI/AMX, peaks (log2)."""
    f = set(m.features)

    def lg(v):
        return math.log2(v) if v else -1.0

    return [lg(m.vector_bits), lg(m.cores), float("avx512_vnni" in f or "avx_vnni" in f), float("amx_int8" in f),
            lg(m.peak_fp32_gflops), lg(m.peak_int8_gops)]


def record_machine(rec: dict) -> Machine:
    """The machine a record names (schema 2), or the one its target implies (schema 1)."""
    m = rec.get("machine")
    return Machine.from_dict(m) if isinstance(m, dict) and m.get("kind") else from_legacy_record(rec)


def record_kind(rec: dict) -> str:
    m = rec.get("machine")
    return m["kind"] if isinstance(m, dict) and m.get("kind") else from_legacy_record(rec).kind


def fingerprint(obj) -> str:
    """A short stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]
