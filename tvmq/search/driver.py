"""The tuning loop: propose, measure, append each record to disk, learn, repeat."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..record import log as recordlog
from ..record.log import failure_kind
from ..space import config_key
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
    measured again; those that failed because of the kernel are not. ``retime(k)`` measures the k
    fastest again at the end: the best is then, among them, the config whose median measurement is
    fastest (one that fails when measured again is out).
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
        self.retimed = False  # the run's best few were measured again after its last trial
        self._t0 = time.time()
        self._pending = []
        self._times: dict[str, list[float]] = {}  # config key -> medians of its ok measurements in this run
        self._cfgs: dict[str, dict] = {}
        self._best_of: dict[str, tuple] = {}  # config key -> (max_abs_err, instructions) of its measurement
        self._flaky: set[str] = set()  # configs that failed when measured again (not because of the board)
        if resume and log_path:
            key = task.measure_key(self.machine.kind, settings.threads if settings is not None else None,
                                   settings is not None and settings.flush_cache)
            old = [r for r in (prior_records if prior_records is not None else recordlog.read(log_path))
                   if r.get("task_key") == key and r.get("tuner") == tuner.name and r.get("failure") != "board"]
            trials = [r for r in old if not r.get("retime")]
            scores = []
            for r in trials:
                rr = RunResult(r["status"], r["times"], r.get("error", ""), r.get("max_abs_err"))
                self._account(r["config"], rr)
                scores.append(self.flops / rr.median if rr.ok else 0.0)
            if trials:  # one update: the cost model refits once, not once per record resumed
                tuner.update([r["config"] for r in trials], scores)
            for r in old:
                if r.get("retime") and r["status"] == "ok" and r["times"]:
                    self._times.setdefault(config_key(r["config"]), []).append(float(np.median(r["times"])))
                elif r.get("retime"):
                    self._flaky.add(config_key(r["config"]))
            self.retimed = any(r.get("retime") and r.get("trial", 0) >= self.res.trials for r in old)
            self._rebest()
        self._pending = [c for c in (seeds or []) if not tuner.seen(c)]

    @property
    def best_rate(self) -> float:
        return self.flops / self.res.best_time / 1e9 if self.res.best_time < float("inf") else 0.0

    def _account(self, cfg, r):
        res = self.res
        res.trials += 1
        res.statuses[r.status] = res.statuses.get(r.status, 0) + 1
        if r.status == "ok":
            k = config_key(cfg)
            self._times.setdefault(k, []).append(r.median)
            self._cfgs[k] = cfg
            self._best_of[k] = (r.max_abs_err, getattr(r, "instructions", None))
            if r.median < res.best_time:
                res.best_time, res.best_config, res.best_err = r.median, cfg, r.max_abs_err
                res.best_instructions = getattr(r, "instructions", None)
        res.curve.append(self.best_rate)

    def _rated(self, key: str) -> float:
        """A config's time: the median of its measurements in this run (the slower middle one of two)."""
        t = sorted(self._times[key])
        return t[len(t) // 2]

    def _rebest(self):
        keys = [k for k in self._times if k in self._cfgs and k not in self._flaky]
        again = [k for k in keys if len(self._times[k]) > 1]
        if keys:  # once some were measured again, the best is one of them: the others' one sample may be lucky
            k = min(again or keys, key=self._rated)
            self.res.best_time, self.res.best_config = self._rated(k), self._cfgs[k]
            self.res.best_err, self.res.best_instructions = self._best_of[k]

    def retime(self, k: int = 4, rounds: int = 2) -> int:
        """Measure the ``k`` fastest configs of the run again, ``rounds`` times interleaved, each appended as a
        re-time record (not a trial): a lucky sample no longer picks the best. Returns the measurements made."""
        eligible = lambda: [key for key in self._times if key in self._cfgs and key not in self._flaky]  # noqa: E731
        top = sorted(eligible(), key=self._rated)[:k]
        self.retimed = True
        n, done = 0, set(top)
        while top:
            cfgs = [self._cfgs[key] for key in top]
            for _ in range(rounds):
                for cfg, r in zip(cfgs, self.measure(cfgs)):
                    if r.ok:
                        self._times[config_key(cfg)].append(r.median)
                    elif failure_kind(r.status, r.error) != "board":  # verified once, failed now: never the best
                        self._flaky.add(config_key(cfg))
                    if self.log_path:
                        recordlog.append(self.log_path, recordlog.make_record(
                            self.task, cfg, r, self.runner_label, self.settings, self.tuner.name, self.res.trials,
                            self.machine, retime=True))
                n += len(cfgs)
            # the re-timed ones may all have read slower: a config now rated best on one sample is measured
            # again too (at most k more), so that one sample never picks the best
            best = min(eligible(), key=self._rated, default=None)
            top = [best] if best is not None and best not in done and len(done) < 2 * k else []
            done.update(top)
        self._rebest()
        self.res.tuning_s = time.time() - self._t0
        return n

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
         prior_records: list | None = None, machine=None, seeds: list | None = None, retime: int = 0) -> TuneResult:
    """Tune ``task`` for ``trials`` measurements (resumed ones count), appending records to ``log_path``
    (see ``TuneSession``); stops early after ``early_stopping`` trials without a gain; then measures the
    ``retime`` fastest again (twice each; a resumed run already re-timed after its last trial is not)."""
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
    if retime and s._cfgs and not (s.retimed and not s.res.new_trials):
        if progress:
            print(f"[{task.workload.name} {task.variant}] measuring the {min(retime, len(s._cfgs))} fastest again",
                  file=sys.stderr)
        s.retime(retime)
    s.res.tuning_s = time.time() - s._t0
    return s.res


def curve_to_fraction(curve: list, frac: float = 0.9) -> int | None:
    """Trials needed to reach ``frac`` of the final best (None if never)."""
    if not curve or curve[-1] <= 0:
        return None
    target = frac * curve[-1]
    return int(np.argmax(np.array(curve) >= target)) + 1
