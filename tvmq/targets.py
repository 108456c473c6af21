"""Targets as data: one JSON file per target under ``targets/``.

``host`` is resolved at run time (LLVM's name for this CPU, its core count).
A target whose code this CPU cannot execute is refused for local
measurement with a message that says to use RPC.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TvmqError
from .machine import available_cores

FEATURES = ("avx512f", "avx512bw", "avx512vnni", "avx512vbmi", "avxvnni", "neon", "dotprod", "i8mm", "amx-tile",
            "amx-int8", "amx-bf16", "avx512bf16", "avx512fp16")
TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"


@dataclass(frozen=True)
class TargetInfo:
    """A named target: the TVM target dict plus how candidates reach it."""

    name: str
    target: dict
    arch: str
    runner: str = "local"
    description: str = ""
    requires_features: tuple = ()
    rpc_key: str | None = None
    cross_cc: str | None = None
    extra: dict = field(default_factory=dict)

    def tvm_target(self):
        import tvm  # lazy: TVM stays out of start-up (the pure-Python tier never loads it)

        return tvm.target.Target(self.target)

    @property
    def json(self) -> str:
        """The full target as canonical JSON (what records carry and keys hash)."""
        return json.dumps(self.target, sort_keys=True)

    @property
    def is_native(self) -> bool:
        return self.arch == platform.machine()

    def features(self) -> set[str]:
        """The target's CPU features that search spaces may ask for (as LLVM names them)."""
        import tvm  # lazy: TVM stays out of start-up (the pure-Python tier never loads it)

        has = tvm.get_global_func("target.target_has_feature")
        t = self.tvm_target()
        return {f for f in FEATURES if has(f, t)}

    def local_problem(self) -> str | None:
        """Why this CPU cannot run the target's code locally, or None."""
        if not self.is_native:
            return f"target {self.name!r} is {self.arch} code and this machine is {platform.machine()}"
        missing = [f for f in self.requires_features if not cpu_has(f)]
        if missing:
            return f"target {self.name!r} needs CPU features {missing} that this CPU lacks"
        return None

    def check_local(self):
        why = self.local_problem()
        if why:
            raise TvmqError(f"{why}: measure it over RPC (--rpc-tracker HOST:PORT --rpc-key KEY)")


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has(feature: str) -> bool:
    return feature in cpu_flags()


def _resolve_host(d: dict) -> dict:
    import tvm  # lazy: TVM stays out of start-up (the pure-Python tier never loads it)

    d = dict(d)
    t = dict(d["target"])
    if t.get("mcpu") == "@detect":
        t["mcpu"] = str(tvm.target.codegen.llvm_get_system_cpu())
    if t.get("num-cores") == "@cores":
        t["num-cores"] = available_cores()
    extra = _host_extensions(t["mcpu"])
    if extra:
        t["mattr"] = extra
    d["target"] = t
    if d.get("arch") == "@native":
        d["arch"] = platform.machine()
    return d


# Host extensions LLVM's CPU name may not imply (a VM's CPUID model can name an older core:
# an Emerald Rapids VM reports model 167, which LLVM calls rocketlake, a CPU without AMX).
HOST_EXTENSIONS = ("avx512vnni", "avx512vbmi", "avx512bf16", "avx512fp16", "avxvnni", "amx-tile", "amx-int8",
                   "amx-bf16")


def _host_extensions(mcpu: str) -> list[str]:
    """``+feature`` for each extension this CPU has that ``mcpu`` does not enable."""
    import tvm  # lazy: TVM stays out of start-up (the pure-Python tier never loads it)

    host = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures")()
    implied = tvm.target.codegen.llvm_get_cpu_features(tvm.target.Target({"kind": "llvm", "mcpu": mcpu}))
    return [f"+{f}" for f in HOST_EXTENSIONS if host.get(f) and f not in implied]


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.json"))


def get_target(name: str) -> TargetInfo:
    """Load ``targets/NAME.json``; unknown names list the valid ones."""
    path = TARGETS_DIR / f"{name}.json"
    if not path.exists():
        raise TvmqError(f"unknown target {name!r}; valid targets are {target_names()}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TvmqError(f"target file {path} is not valid JSON: {e}") from None
    if name == "host" or "@" in json.dumps(d):
        d = _resolve_host(d)
    known = {"name", "target", "arch", "runner", "description", "requires_features", "rpc_key", "cross_cc"}
    return TargetInfo(
        name=d["name"], target=d["target"], arch=d["arch"], runner=d.get("runner", "local"),
        description=d.get("description", ""), requires_features=tuple(d.get("requires_features", ())),
        rpc_key=d.get("rpc_key"), cross_cc=d.get("cross_cc"), extra={k: v for k, v in d.items() if k not in known},
    )
