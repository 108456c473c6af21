"""Rebuild the best schedule of a task from tuning records, with no tuning."""

from __future__ import annotations

import sys

from ..record import log as recordlog


def best_record(task, records: list[dict], tuner: str | None = None):
    """The fastest ok record of ``task`` (same target, workload, variant and params), optionally of one tuner."""
    recs = [r for r in records if tuner is None or r.get("tuner") == tuner]
    return recordlog.best(recs, task.target.target, task.workload.key, task.variant, task.params)


def schedule_for(task, record: dict | None, warn: bool = True):
    """(op, schedule, config) for the record's config, or the space's default when there is none.

    MetaSchedule records point at their database; the schedule is recompiled from it.
    """
    import tvm

    from ..templates import instantiate, template_module

    space = task.space()
    if record is not None and record.get("tuner") == "metaschedule":
        from ..ops import make_op
        from ..search.metaschedule import best_schedule

        cfg = {k: v for k, v in record["config"].items() if k != "metaschedule_workdir"}
        full = dict(space.default, **cfg)
        op = make_op(task.op_name, task.workload, **task.params, **template_module(task.template).op_params(full))
        sch = best_schedule(task, record["config"]["metaschedule_workdir"])
        if sch is not None:
            return op, sch, full
        record = None
    if record is None:
        if warn:
            print(f"tvmq: warning: no tuning record for {task.workload.name} {task.variant} on target "
                  f"{task.target.name}; using the default schedule", file=sys.stderr)
        cfg = space.default
    else:
        cfg = space.complete(record["config"])
    op, sch = instantiate(space, task.op_name, task.workload, task.params, cfg)
    assert isinstance(sch, tvm.s_tir.Schedule)
    return op, sch, cfg
