"""MetaSchedule's side of the build stage: the module it tunes, and its best schedule rebuilt from its database."""

from __future__ import annotations
from ..ops import make_op
from ..templates import template_module


def ms_module(task):
    """The operator MetaSchedule tunes for ``task`` (the layout of the space's default config) and that config."""

    cfg = task.space().default
    params = template_module(task.template).op_params(cfg)
    return make_op(task.op_name, task.workload, **task.params, **params).irmodule(), cfg


def best_schedule(task, work_dir):
    """The best schedule in a MetaSchedule database, or None."""
    import tvm  # lazy: TVM and MetaSchedule stay out of start-up until a schedule is rebuilt
    import tvm.s_tir.tensor_intrin  # noqa: F401  (registers the intrinsics a trace may name, e.g. dot_16x4_vnni)
    from tvm.s_tir import meta_schedule as ms  # lazy: heavy (TVM)

    mod, _ = ms_module(task)
    db = ms.database.JSONDatabase(work_dir=str(work_dir), allow_missing=False)
    return ms.tir_integration.compile_tir(db, mod, tvm.target.Target(task.target.target))
