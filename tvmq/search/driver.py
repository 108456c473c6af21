"""The tuning loop: propose, measure, append each record to disk, learn, repeat."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..record import log as recordlog
from ..run.base import RunResult
from ..variants import rate_unit
from ..machine import this_machine
from ..run.verify import TaskVerifier


@dataclass
class TuneResult:
    """Outcome of tuning one task."""

    task: object
    best_config: dict | None = None
    best_time: float = float("inf")
    best_err: float | None = None
    trials: int = 0
    new_trials: int = 0
    tuning_s: float = 0.0
    curve: list = field(default_factory=list)  # best GFLOPS after each trial
    statuses: dict = field(default_factory=dict)
    modelled_best: float | None = None  # with --measure model: the model's estimate of its best (seconds)
    best_instructions: dict | None = None  # the best kernel's key instructions, counted when it was built

    @property
    def gflops(self) -> float:
        return self.task.workload.flops / self.best_time / 1e9 if self.best_time < float("inf") else 0.0


class Measurer:
    """The real measure function: build in parallel processes, then verify and time."""

    def __init__(self, task, builder, runner, settings):

        self.task, self.builder, self.runner, self.settings = task, builder, runner, settings
        self.verifier = TaskVerifier(task, settings.seed)

    @property
    def label(self):
        return self.runner.label

    def __call__(self, cfgs):
        builds = self.builder.build(self.task, cfgs)
        results = self.runner.run(builds, self.verifier, self.settings)
        for b, r in zip(builds, results):
            r.instructions = b.instructions  # the table's key instructions: no second compile of the best
        return results


class Progress:
    """One status line per task on stderr, rewritten in place on a terminal."""

    def __init__(self, name: str, total: int, enabled: bool = True, unit: str = "GFLOPS"):
        self.name, self.total, self.enabled, self.unit = name, total, enabled, unit
        self.t0 = time.time()
        self.tty = sys.stderr.isatty()

    def update(self, done, best_gflops, failures):
        if not self.enabled:
            return
        width = 24
        fill = int(width * done / max(self.total, 1))
        line = (f"[{self.name}] [{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} trials, "
                f"best {best_gflops:7.1f} {self.unit}, {failures} failed, {time.time() - self.t0:5.0f}s")
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled and self.tty:
            print(file=sys.stderr)


class TuneSession:
    """One task's tuning, steppable: ``step(n)`` measures up to ``n`` more candidates (the task
    scheduler of a whole model interleaves sessions); ``tune`` runs one to its budget.

    ``measure(cfgs) -> list[RunResult]`` does the timing, so tests pass a fake. ``machine`` is who
    measures (records name it; default this CPU). ``seeds`` are measured first (transfer tuning:
    other machines' best configs). On resume, candidates that failed because of the board are
    measured again; those that failed because of the kernel are not.
    """

    def __init__(self, task, tuner, measure, log_path=None, batch_size: int = 8, resume: bool = False,
                 settings=None, runner_label: str = "local", prior_records: list | None = None, machine=None,
                 seeds: list | None = None):
        self.task, self.tuner, self.measure, self.log_path = task, tuner, measure, log_path
        self.batch_size, self.settings, self.runner_label = batch_size, settings, runner_label
        self.machine = machine or this_machine()
        self.flops = task.workload.flops
        self.res = TuneResult(task)
        self.exhausted = False
        self._t0 = time.time()
        self._pending = []
        if resume and log_path:
            key = task.measure_key(self.machine.kind, settings.threads if settings is not None else None,
                                   settings is not None and settings.flush_cache)
            old = [r for r in (prior_records if prior_records is not None else recordlog.read(log_path))
                   if r.get("task_key") == key and r.get("tuner") == tuner.name and r.get("failure") != "board"]
            scores = []
            for r in old:
                rr = RunResult(r["status"], r["times"], r.get("error", ""), r.get("max_abs_err"))
                self._account(r["config"], rr)
                scores.append(self.flops / rr.median if rr.ok else 0.0)
            if old:  # one update: the cost model refits once, not once per record resumed
                tuner.update([r["config"] for r in old], scores)
        self._pending = [c for c in (seeds or []) if not tuner.seen(c)]

    @property
    def best_rate(self) -> float:
        return self.flops / self.res.best_time / 1e9 if self.res.best_time < float("inf") else 0.0

    def _account(self, cfg, r):
        res = self.res
        res.trials += 1
        res.statuses[r.status] = res.statuses.get(r.status, 0) + 1
        if r.status == "ok" and r.median < res.best_time:
            res.best_time, res.best_config, res.best_err = r.median, cfg, r.max_abs_err
            res.best_instructions = getattr(r, "instructions", None)
        res.curve.append(self.best_rate)

    def step(self, n: int) -> int:
        """Measure one batch of at most ``n`` new candidates (records appended as they finish);
        returns how many were measured (0: the space is exhausted)."""
        if self._pending:
            batch, self._pending = self._pending[:n], self._pending[n:]
        else:
            batch = self.tuner.next_batch(n)
        batch = [c for c in batch if not self.tuner.seen(c)]
        if not batch:
            self.exhausted = True
            return 0
        results = self.measure(batch)
        for cfg, r in zip(batch, results):
            self._account(cfg, r)
            self.res.new_trials += 1
            if self.log_path:
                recordlog.append(self.log_path, recordlog.make_record(
                    self.task, cfg, r, self.runner_label, self.settings, self.tuner.name, self.res.trials,
                    self.machine))
        self.tuner.update(batch, [self.flops / r.median if r.ok else 0.0 for r in results])
        self.res.tuning_s = time.time() - self._t0
        return len(batch)

    @property
    def failures(self) -> int:
        return sum(v for k, v in self.res.statuses.items() if k != "ok")


def tune(task, tuner, measure, trials: int, log_path=None, batch_size: int = 8, resume: bool = False,
         early_stopping: int | None = None, settings=None, runner_label: str = "local", progress=True,
         prior_records: list | None = None, machine=None, seeds: list | None = None) -> TuneResult:
    """Tune ``task`` for ``trials`` measurements (resumed ones count), appending records to ``log_path``
    (see ``TuneSession``); stops early after ``early_stopping`` trials without a gain."""
    s = TuneSession(task, tuner, measure, log_path, batch_size, resume, settings, runner_label, prior_records,
                    machine, seeds)
    bar = Progress(f"{task.workload.name} {task.variant}", trials, progress, rate_unit(task.variant))
    since_best = 0
    while s.res.trials < trials:
        prev = s.res.best_time
        n = s.step(min(batch_size, trials - s.res.trials))
        if not n:
            break  # space exhausted
        bar.update(s.res.trials, s.best_rate, s.failures)
        since_best = 0 if s.res.best_time < prev else since_best + n
        if early_stopping and since_best >= early_stopping:
            break
    bar.close()
    s.res.tuning_s = time.time() - s._t0
    return s.res


def curve_to_fraction(curve: list, frac: float = 0.9) -> int | None:
    """Trials needed to reach ``frac`` of the final best (None if never)."""
    if not curve or curve[-1] <= 0:
        return None
    target = frac * curve[-1]
    return int(np.argmax(np.array(curve) >= target)) + 1
