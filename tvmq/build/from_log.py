"""Rebuild the best schedule of a task from tuning records, with no tuning."""

from __future__ import annotations

import sys

from ..machine import Machine, for_target
from ..record.select import Choice, choose
from ..templates import instantiate, template_module
from .metaschedule_db import best_schedule
from ..ops import make_op


def choice_for(task, records: list[dict], tuner: str | None = None, machine: Machine | None = None,
               threads: int | None = None, transfer: bool | None = None) -> Choice:
    """The record to build ``task`` from, for ``machine`` (default: the one ``task.target`` runs on).

    ``transfer`` None takes the policy of a ``RecordSet`` (off for a plain list).
    """
    transfer = getattr(records, "transfer", False) if transfer is None else transfer
    return choose(task, records, machine or for_target(task.target), threads, transfer, tuner)


def best_record(task, records: list[dict], tuner: str | None = None, machine: Machine | None = None,
                threads: int | None = None, transfer: bool | None = None, warn_prefix: str | None = None):
    """``choice_for``'s record (None: the default schedule); its note goes to stderr under ``warn_prefix``."""
    c = choice_for(task, records, tuner, machine, threads, transfer)
    if warn_prefix:
        say(c, warn_prefix)
    return c.record


def say(c: Choice, prefix: str):
    """A choice's note on stderr (a warning unless the record was measured on this machine)."""
    if c.note:
        print(f"{prefix}: {'warning: ' if c.source != 'this machine' else ''}{c.note}", file=sys.stderr)


def schedule_for(task, record: dict | None, warn: bool = True):
    """(op, schedule, config) for the record's config, or the space's default when there is none.

    MetaSchedule records point at their database; the schedule is recompiled from it.
    """
    import tvm  # lazy: TVM stays out of start-up until a schedule is built


    space = task.space()
    if record is not None and record.get("tuner") == "metaschedule":

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
