"""Tune a list of tasks: the library call behind ``tvmq tune`` and ``tvmq bench --trials``.

Each task gets its tuner (chosen by name), a warm start from the records database (this
machine's records of other tasks; every machine's with ``transfer``), seeds where this machine has
no record of it (its best of the sibling variants; other machines' best with ``transfer``), and
the driver's propose-measure-append loop.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..build import Builder
from ..errors import TvmqError
from ..record import log as recordlog
from ..record.log import median_time
from ..record.select import sibling_seeds, transfer_seeds
from ..run.mca import ModelRunner, model_for, model_machine
from ..space import config_key
from ..variants import siblings
from . import ALL_TUNERS, TUNERS, make_tuner
from .driver import Measurer, TuneResult, TuneSession, tune


@dataclass(frozen=True)
class TuneOptions:
    """How the search runs; ``tvmq tune``'s flags map onto it one to one."""

    trials: int = 64
    tuner: str = "xgb"
    batch_size: int | None = None  # None: the tuner's default (8; metaschedule 64, its num_trials_per_iter)
    early_stopping: int | None = None
    resume: bool = False
    warm_start: bool = True
    transfer: bool = False
    seed: int = 0
    progress: bool = True
    measure: str = "run"  # run: real measurements; model: rank by the performance model, verify the best for real
    verify_top: int = 4  # with measure=model: how many of the model's best are run and verified for real
    retime: int | None = None  # the fastest this many measured twice more at the end (None: 4; own-loop tuners 0)

    def __post_init__(self):
        if self.tuner not in ALL_TUNERS:
            raise TvmqError(f"unknown tuner {self.tuner!r}; valid tuners are {ALL_TUNERS}")
        if self.trials < 1:
            raise TvmqError(f"--trials must be >= 1, got {self.trials}")
        if self.measure not in ("run", "model"):
            raise TvmqError(f"--measure must be run or model, got {self.measure!r}")
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", TUNERS[self.tuner].default_batch_size)
        if self.retime is None:
            object.__setattr__(self, "retime", 0 if TUNERS[self.tuner].own_loop else 4)
        if self.retime < 0:
            raise TvmqError(f"--retime must be >= 0, got {self.retime}")
        if self.batch_size < 1:
            raise TvmqError(f"--batch-size must be >= 1, got {self.batch_size}")
        TUNERS[self.tuner].check_options(self)  # a flag the tuner cannot honour is refused, not ignored


def read_database(logs: str | Path | None, log_path: Path, prior: list[dict]) -> list[dict]:
    """Records for warm start and transfer: ``prior`` (the run's own log) plus every log under ``logs``."""
    db = list(prior)
    src = Path(logs) if logs else None
    if src is not None and src.exists():
        here = Path(log_path).resolve()
        files = [src] if src.is_file() else sorted(src.rglob("*.jsonl"))
        db += [r for f in files if f.resolve() != here for r in recordlog.read(f)]
    return db


def tune_tasks(tasks, opts: TuneOptions, settings, runner, machine, log_path, logs="autotune_logs",
               on_result=None) -> list[TuneResult]:
    """Tune every task in turn, appending each measured candidate to ``log_path``; ``on_result(result)``
    is called after each task (the command prints its row)."""
    log_path = Path(log_path)
    prior = recordlog.read(log_path) if log_path.exists() else []
    db = read_database(logs, log_path, prior)
    out = []
    builder = Builder(settings.build_workers, settings.build_timeout_s, asm=opts.measure == "model")
    try:
        for task in tasks:
            t0 = time.time()
            if opts.measure == "model":
                res = _tune_modelled(task, opts, settings, runner, machine, log_path, prior, db, builder)
            else:
                res = _tune_one(task, opts, settings, runner, machine, log_path, prior, db, builder)
            # the next tasks learn from this one (warm start; a codebook's sibling seeds from the float just tuned)
            new = [r for r in (recordlog.read(log_path, warn=False) if log_path.exists() else [])
                   if r.get("timestamp", 0) >= t0 - 0.001]  # timestamps are rounded to ms
            prior, db = prior + new, db + new
            out.append(res)
            if on_result:
                on_result(res)
    finally:
        builder.close()
    return out


def _prepare(task, opts, settings, machine, prior, db):
    """(tuner, seeds) for ``task``: warm-started from the database, with transfer seeds where asked."""
    key = task.measure_key(machine.kind, settings.threads, settings.flush_cache)
    tuner = make_tuner(opts.tuner, task.space(), seed=opts.seed, threads=settings.threads, machine=machine)
    if opts.warm_start:
        # This machine's records of other tasks, and the performance model's ranks for this target (a
        # prior: a real board's first measurements then start from the model's best guesses).
        same_machine = [r for r in db if r.get("target") == task.target.target
                        and (r.get("machine_kind") == machine.kind or r.get("modelled"))]
        tuner.warm_start([r for r in (db if opts.transfer else same_machine)
                          if r.get("variant") == task.variant and r.get("task_key") != key], prior=opts.transfer)
    seeds, fresh = [], not any(r.get("task_key") == key for r in prior)
    if settings.flush_cache and fresh:
        seeds = hot_seeds(task, [*prior, *db], machine, settings.threads, opts.batch_size)
        if seeds and opts.progress:
            print(f"tvmq tune: {task.workload.name} {task.variant}: cold weights: measuring this machine's {len(seeds)} "
                  "best config(s) timed hot first", file=sys.stderr)
    if opts.transfer and not seeds and fresh:
        seeds = transfer_seeds(task, db, machine, n=opts.batch_size)
        if opts.progress:
            print(f"tvmq tune: {task.workload.name} {task.variant}: transfer: measuring {len(seeds)} config(s) "
                  "from other machines' records (and this machine's of its sibling variants) first",
                  file=sys.stderr)
    elif opts.warm_start and not seeds and fresh:
        seeds = sibling_seeds(task, db, machine, n=max(1, opts.batch_size // 2))
        if seeds and opts.progress:
            print(f"tvmq tune: {task.workload.name} {task.variant}: measuring this machine's best of the sibling "
                  f"variants {siblings(task.variant)} first ({len(seeds)} config(s))", file=sys.stderr)
    return tuner, seeds


def hot_seeds(task, records: list[dict], machine, threads: int, n: int) -> list[dict]:
    """The ``n`` best distinct configs of ``task`` that this machine timed with hot caches: where cold-weight
    tuning of the task starts (a config fast hot is a good first guess cold)."""
    hot = task.measure_key(machine.kind, threads)
    out, seen = [], set()
    for r in sorted((r for r in records if r.get("task_key") == hot and r.get("status") == "ok"), key=median_time):
        k = config_key(r["config"])
        if k not in seen:
            seen.add(k)
            out.append(r["config"])
        if len(out) >= n:
            break
    return out


def make_session(task, opts, settings, runner, machine, log_path, prior, db, builder) -> TuneSession:
    """A steppable tuning session of ``task`` (the model scheduler interleaves them)."""
    tuner, seeds = _prepare(task, opts, settings, machine, prior, db)
    if tuner.own_loop:
        raise TvmqError(f"--tuner {tuner.name} runs its own search loop: it cannot share a budget batch by batch "
                        "(tune --model); use xgb, random or grid")
    return TuneSession(task, tuner, Measurer(task, builder, runner, settings), log_path, opts.batch_size,
                       opts.resume, settings, runner.label, prior, machine, seeds)


def _tune_one(task, opts, settings, runner, machine, log_path, prior, db, builder, runner_label=None,
              retime: int | None = None) -> TuneResult:
    tuner, seeds = _prepare(task, opts, settings, machine, prior, db)
    if tuner.own_loop:  # MetaSchedule: the whole task in its own loop, with the same options and settings
        return tuner.tune_task(task, opts, settings, runner, machine, log_path, prior)
    res = tune(task, tuner, Measurer(task, builder, runner, settings), opts.trials, log_path, opts.batch_size,
               opts.resume, opts.early_stopping, settings, runner_label or runner.label, opts.progress, prior, machine,
               seeds, opts.retime if retime is None else retime)
    if res.best_config is None:
        print(f"tvmq: warning: no candidate of {task.workload.name} {task.variant} verified ({res.statuses})",
              file=sys.stderr)
    return res


def _tune_modelled(task, opts, settings, runner, machine, log_path, prior, db, builder) -> TuneResult:
    """Rank by the performance model (records labelled modelled), then run and verify the model's
    ``verify_top`` best configs on the real runner; the result is the best verified one."""
    model = model_for(task.target)
    mrunner = ModelRunner(model, task)
    mmachine = model_machine(model, task.target)
    ranked = _tune_one(task, opts, settings, mrunner, mmachine, log_path, prior, db, builder, "model", retime=0)
    mkey = task.measure_key(mmachine.kind, settings.threads, settings.flush_cache)
    est = {config_key(r["config"]): median_time(r) for r in recordlog.read(log_path) if r.get("task_key") == mkey}
    top = [json.loads(k) for k, _ in sorted(est.items(), key=lambda kv: kv[1])[: opts.verify_top]]
    if opts.progress:
        print(f"tvmq tune: {task.workload.name} {task.variant}: verifying the model's {len(top)} best on "
              f"{runner.label}", file=sys.stderr)
    real = tune(task, _Fixed(top), Measurer(task, builder, runner, settings), len(top), log_path, len(top) or 1,
                False, None, settings, runner.label, opts.progress, prior, machine)
    real.trials, real.tuning_s = ranked.trials + real.trials, ranked.tuning_s + real.tuning_s
    real.modelled_best = ranked.best_time if ranked.best_time < float("inf") else None
    return real


class _Fixed:
    """A 'tuner' that proposes a fixed list once (the model's picks, to verify)."""

    name = "model-verify"

    def __init__(self, cfgs):
        self.cfgs, self.done = list(cfgs), set()

    def next_batch(self, n):
        out, self.cfgs = self.cfgs[:n], self.cfgs[n:]
        return out

    def seen(self, cfg):
        return config_key(cfg) in self.done

    def update(self, cfgs, scores):
        self.done.update(config_key(c) for c in cfgs)
