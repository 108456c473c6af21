"""The tuning loop: propose, measure, append each record to disk, learn, repeat."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..record import log as recordlog
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
        return self.runner.run(self.builder.build(self.task, cfgs), self.verifier, self.settings)


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


def tune(task, tuner, measure, trials: int, log_path=None, batch_size: int = 8, resume: bool = False,
         early_stopping: int | None = None, settings=None, runner_label: str = "local", progress=True,
         prior_records: list | None = None, machine=None, seeds: list | None = None) -> TuneResult:
    """Tune ``task`` for ``trials`` measurements (resumed ones count), appending records to ``log_path``.

    ``measure(cfgs) -> list[RunResult]`` does the timing, so tests pass a fake. ``machine`` is who
    measures (records name it; default this CPU). ``seeds`` are measured first (transfer tuning:
    other machines' best configs). On resume, candidates that failed because of the board are
    measured again; those that failed because of the kernel are not.
    """

    machine = machine or this_machine()
    threads = settings.threads if settings is not None else None
    key = task.measure_key(machine.kind, threads)
    flops = task.workload.flops
    res = TuneResult(task)
    t0 = time.time()
    best = 0.0

    def account(cfg, r):
        nonlocal best
        res.trials += 1
        res.statuses[r.status] = res.statuses.get(r.status, 0) + 1
        if r.status == "ok" and r.median < res.best_time:
            res.best_time, res.best_config, res.best_err = r.median, cfg, r.max_abs_err
        best = flops / res.best_time / 1e9 if res.best_time < float("inf") else 0.0
        res.curve.append(best)

    if resume and log_path:
        from ..run.base import RunResult

        old = [r for r in (prior_records if prior_records is not None else recordlog.read(log_path))
               if r.get("task_key") == key and r.get("tuner") == tuner.name and r.get("failure") != "board"]
        for r in old:
            rr = RunResult(r["status"], r["times"], r.get("error", ""), r.get("max_abs_err"))
            account(r["config"], rr)
            tuner.update([r["config"]], [flops / rr.median if rr.ok else 0.0])
    bar = Progress(f"{task.workload.name} {task.variant}", trials, progress, rate_unit(task.variant))
    since_best = 0
    pending = [c for c in (seeds or []) if not tuner.seen(c)]
    while res.trials < trials:
        n = min(batch_size, trials - res.trials)
        if pending:
            batch, pending = pending[:n], pending[n:]
        else:
            batch = tuner.next_batch(n)
        batch = [c for c in batch if not tuner.seen(c)]
        if not batch:
            break  # space exhausted
        results = measure(batch)
        prev = res.best_time
        for cfg, r in zip(batch, results):
            account(cfg, r)
            res.new_trials += 1
            if log_path:
                recordlog.append(log_path, recordlog.make_record(task, cfg, r, runner_label, settings, tuner.name,
                                                                  res.trials, machine))
        tuner.update(batch, [flops / r.median if r.ok else 0.0 for r in results])
        bar.update(res.trials, best, sum(v for k, v in res.statuses.items() if k != "ok"))
        since_best = 0 if res.best_time < prev else since_best + len(batch)
        if early_stopping and since_best >= early_stopping:
            break
    bar.close()
    res.tuning_s = time.time() - t0
    return res


def curve_to_fraction(curve: list, frac: float = 0.9) -> int | None:
    """Trials needed to reach ``frac`` of the final best (None if never)."""
    if not curve or curve[-1] <= 0:
        return None
    target = frac * curve[-1]
    return int(np.argmax(np.array(curve) >= target)) + 1
