"""A tuning task: one workload, one variant (with its quantization parameters), one target."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from .space import Space, template_for
from .targets import TargetInfo
from .workload import ConvWorkload

# Variant name -> default parameters (what `--variants` names mean).
VARIANT_DEFAULTS = {
    "float": {},
    "codebook": {"bits": 5},
    "codebook4": {"bits": 4, "planar": 16},
    "codebook_int8": {"bits": 4, "planar": 64},
    "int8": {},
    "int8w7": {},
    "int16": {},
    "int4": {},
    "im2col": {},
    "im2col_float": {},
    "im2col_int8": {},
    "im2col_codebook": {"bits": 5},
}
# User-facing aliases -> operator registry names.
OP_NAMES = {"codebook4": "codebook", "im2col": "im2col_float"}


@dataclass(frozen=True)
class Task:
    """What one tuning run optimises; ``key`` hashes everything that changes a result."""

    workload: ConvWorkload
    variant: str
    target: TargetInfo
    params: dict = field(default_factory=dict)

    @classmethod
    def make(cls, workload, variant, target, **params):
        from .errors import TvmqError

        if variant not in VARIANT_DEFAULTS:
            raise TvmqError(f"unknown variant {variant!r}; valid variants are {sorted(VARIANT_DEFAULTS)}")
        return cls(workload, variant, target, {**VARIANT_DEFAULTS[variant], **params})

    @property
    def op_name(self) -> str:
        return OP_NAMES.get(self.variant, self.variant)

    @property
    def template(self) -> str:
        return template_for(self.op_name)

    def space(self) -> Space:
        return Space.load(self.workload, self.op_name, features=self.target.features())

    @property
    def key(self) -> str:
        """What is computed and searched: workload, operator, parameters, target, resolved space, versions."""
        import tvm

        from . import __version__

        blob = json.dumps(dict(wl=self.workload.key, v=self.op_name, p=self.params, t=self.target.target,
                               tvm=tvm.__version__, tvmq=__version__, space=self.space().fingerprint),
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def measure_key(self, machine_kind: str, threads: int) -> str:
        """``key`` plus what changes a time: the machine kind and the runtime threads (records' ``task_key``)."""
        blob = json.dumps(dict(task=self.key, machine=machine_kind, threads=threads), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dict(workload=self.workload.to_dict(), variant=self.variant, op=self.op_name, params=self.params,
                    target=self.target.target, target_name=self.target.name, cross_cc=self.target.cross_cc)
