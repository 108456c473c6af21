"""The operator record every later stage consumes, and the variant registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import TvmqError
from ..workload import ConvWorkload


@dataclass(frozen=True)
class ArgSpec:
    """One kernel argument: name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class OpSpec:
    """A convolution operator as TVM tensor expressions, with its numpy check.

    Attributes
    ----------
    name : str
        Carries layout and quantization, e.g. ``conv2d_nchwc_codebook``.
    tensors : list of te.Tensor
        Kernel arguments in call order: inputs, then the output.
    make_inputs : callable
        ``rng -> list of np.ndarray``, one per input argument.
    reference : callable
        ``inputs -> np.ndarray``, the expected output (float64 or exact int).
    atol, rtol : float
        Tolerance for float outputs; integer outputs must match within ``int_tol`` (0: exactly).
    """

    name: str
    variant: str
    layout: str
    workload: ConvWorkload
    params: dict
    tensors: list
    make_inputs: Callable[[np.random.Generator], list]
    reference: Callable[[list], np.ndarray]
    atol: float = 1e-4
    rtol: float = 1e-4
    int_tol: int = 0  # integer outputs: 1 where a float result is rounded (one step at a .5 tie)
    blocks: dict = field(default_factory=dict)

    @property
    def args(self) -> list[ArgSpec]:
        return [ArgSpec(t.op.name, tuple(int(s) for s in t.shape), str(t.dtype)) for t in self.tensors]

    @property
    def out_arg(self) -> ArgSpec:
        return self.args[-1]

    def prim_func(self):
        from tvm import te  # lazy: heavy (TVM)

        return te.create_prim_func(self.tensors).with_attr("global_symbol", "main")

    def irmodule(self):
        import tvm  # lazy: heavy (TVM)

        return tvm.IRModule({"main": self.prim_func()})

    def check(self, out: np.ndarray, inputs: list, ref: np.ndarray | None = None) -> tuple[bool, float]:
        """Compare a kernel's output with the reference (computed unless given); returns (ok, max abs error)."""
        ref = self.reference(inputs) if ref is None else ref
        if out.shape != ref.shape:
            return False, float("inf")
        if np.issubdtype(out.dtype, np.integer):
            err = float(np.max(np.abs(out.astype(np.int64) - ref.astype(np.int64)))) if out.size else 0.0
            # a rounded float output may differ by one step at a .5 tie, but only rarely: a rounding
            # or zero-point bug moves most outputs
            off = float(np.mean(out.astype(np.int64) != ref.astype(np.int64))) if out.size else 0.0
            return err <= self.int_tol and (self.int_tol == 0 or off <= 0.01), err
        diff = np.abs(out.astype(np.float64) - ref)
        err = float(diff.max()) if out.size else 0.0
        ok = bool(np.all(diff <= self.atol + self.rtol * np.abs(ref)))
        return ok, err


_VARIANTS: dict[str, Callable[..., OpSpec]] = {}


def register(name: str):
    def deco(fn):
        _VARIANTS[name] = fn
        return fn

    return deco


def variant_names() -> list[str]:
    from . import bf16, codebook, codebook_int8, float as _f, im2col, integer  # noqa: F401  (registration)
    from . import grouped  # noqa: F401  (registration)

    return sorted(_VARIANTS)


def make_op(variant: str, wl: ConvWorkload, **params) -> OpSpec:
    """Build the operator ``variant`` for ``wl``; params are the variant's options."""
    names = variant_names()
    if variant not in _VARIANTS:
        raise TvmqError(f"unknown variant {variant!r}; valid variants are {names}")
    if wl.groups != 1 and not variant.startswith("grouped_"):
        raise TvmqError(f"workload {wl.name!r} has groups={wl.groups}: operator {variant!r} computes an ordinary "
                        f"convolution; use a grouped variant (grouped_float, grouped_int8)")
    return _VARIANTS[variant](wl, **params)
