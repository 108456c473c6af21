"""A tuning task: one workload, one variant (with its quantization parameters), one target."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from . import variants
from .errors import TvmqError
from .space import Space
from .targets import TargetInfo
from .workload import ConvWorkload
from . import __version__

@dataclass(frozen=True)
class Task:
    """What one tuning run optimises; ``key`` hashes everything that changes a result."""

    workload: ConvWorkload
    variant: str
    target: TargetInfo
    params: dict = field(default_factory=dict)

    @classmethod
    def make(cls, workload, variant, target, **params):
        v = variants.get(variant)
        grouped = v.template == "conv2d_grouped"
        if (workload.groups != 1) != grouped:
            raise TvmqError(
                f"workload {workload.name!r} has groups={workload.groups} and variant {variant!r} is for "
                + ("grouped convolutions only (groups > 1)" if grouped else
                   "ordinary convolutions; grouped and depthwise layers take grouped_float, grouped_int8, "
                   "depthwise_float or depthwise_int8"))
        return cls(workload, variant, target, {**v.defaults, **params})

    @property
    def op_name(self) -> str:
        return variants.get(self.variant).op

    @property
    def template(self) -> str:
        return variants.get(self.variant).template

    def space(self) -> Space:
        return Space.load(self.workload, self.op_name, features=self.target.features())

    @property
    def key(self) -> str:
        """What is computed and searched: workload, operator, parameters, target, resolved space, versions."""
        import tvm  # lazy: TVM stays out of start-up (the pure-Python tier never loads it)


        space = self.space()
        blob = json.dumps(dict(wl=self.workload.key, v=self.op_name, p=self.params, t=self.target.target,
                               tvm=tvm.__version__, tvmq=__version__, space=space.fingerprint,
                               **kernel_revisions(space)), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def measure_key(self, machine_kind: str, threads: int, cold: bool = False) -> str:
        """``key`` plus what changes a time: the machine kind, the runtime threads and cold weights
        (``MeasureSettings.flush_cache``; only a cold key says so, so that earlier logs keep theirs)."""
        blob = json.dumps(dict(task=self.key, machine=machine_kind, threads=threads, **({"cold": True} if cold else {})),
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dict(workload=self.workload.to_dict(), variant=self.variant, op=self.op_name, params=self.params,
                    target=self.target.target, target_name=self.target.name, cross_cc=self.target.cross_cc,
                    features=sorted(self.target.features()))


def kernel_revisions(space) -> dict:
    """The revisions of hand-written TIR kernels the space can choose (their speed changes with them):
    resumed tuning re-times a space whose AMX kernel changed."""
    from .templates import amx  # lazy: templates load TVM

    dots = next((k.values for k in space.knobs if k.name == "dot"), ())
    return {"amx": amx.REVISION} if any(str(v).startswith("amx") for v in dots) else {}
