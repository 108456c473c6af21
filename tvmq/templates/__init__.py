"""Schedule templates: code that applies a config (plain data) to a ``tvm.s_tir.Schedule``."""

from __future__ import annotations

import importlib

from ..ops import make_op
from ..space import Space
from .common import InvalidConfig  # noqa: F401

TEMPLATES = ("conv2d_direct", "im2col_gemm", "conv2d_grouped")


def template_module(name: str):
    return importlib.import_module(f"tvmq.templates.{name}")


def instantiate(space: Space, variant: str, wl, variant_params: dict, cfg: dict):
    """Build the operator for ``cfg`` and apply the schedule; returns (op, schedule).

    Raises ``InvalidConfig`` for a config the space or the template rejects.
    """
    import tvm  # lazy: heavy (TVM)

    why = space.violation(cfg)
    if why:
        raise InvalidConfig(why)
    mod = template_module(space.template)
    op = make_op(variant, wl, **variant_params, **mod.op_params(cfg))
    sch = tvm.s_tir.Schedule(op.irmodule())
    try:
        mod.apply(sch, op, cfg, space.orders)
    except tvm.s_tir.ScheduleError as e:
        raise InvalidConfig(f"schedule error: {str(e).strip().splitlines()[-1][:300]}") from None
    return op, sch
