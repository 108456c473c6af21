"""``metaschedule``: TVM's own auto-scheduler as a tuner, the peer to beat.

``MetaScheduleTuner`` is picked by name like ``xgb``, ``random`` and ``grid`` (``search/__init__.TUNERS``)
and takes the same ``TuneOptions`` and ``MeasureSettings``. It runs its own propose-measure loop
(``tune_tir``: MetaSchedule's evolutionary search and XGBoost cost model), so the session hands it
the whole task (``tune_task``) instead of stepping it batch by batch. ``tune``'s flags map onto it one to one:

- ``--trials`` -> ``max_trials_global``; ``--batch-size`` -> ``num_trials_per_iter`` (its default, 64, as
  before); ``--seed`` -> ``seed``;
- ``--number --repeat --min-repeat-ms --flush-cache`` -> its ``EvaluatorConfig``; ``--timeout`` -> its runner's
  ``timeout_sec``; ``--threads`` -> the runtime threads of its measurement worker; ``--build-workers`` ->
  ``num_tuning_cores``; ``--build-timeout`` -> its builder's ``timeout_sec``;
- ``--resume`` skips a task whose MetaSchedule record at the same ``--trials`` is already in the log;
- warm start: like ``random`` and ``grid``, it learns nothing from other tasks' records (``Tuner.warm_start``);
- ``--early-stopping``, ``--transfer`` and ``--measure model`` it cannot honour: they are refused
  (``check_options``), as is an RPC runner (its RPC runner is not wired up).

It gets the same operator (the layout of our space's default config); its best schedule is then
verified and timed by tvmq's own runner, so both are judged alike, and appended as one record. Its
database is kept beside the records file (``autotune_logs/MACHINE-KIND/metaschedule/``) so the best
schedule can be rebuilt later without tuning.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from pathlib import Path

from ..build.metaschedule_db import ms_module
from ..errors import TvmqError
from ..record import log as recordlog
from ..record.log import median_time
from ..build.result import BuildResult
from ..run.base import RunResult
from ..run.verify import TaskVerifier
from .base import Tuner
from .driver import TuneResult

NAME = "metaschedule"


class MetaScheduleTuner(Tuner):
    """MetaSchedule behind the tuner interface: constructed like the others, run a whole task at a time."""

    name = NAME
    own_loop = True
    default_batch_size = 64  # tune_tir's num_trials_per_iter

    def __init__(self, space, seed: int = 0):
        super().__init__(space, seed)
        self.seed = seed

    @classmethod
    def check_options(cls, opts):
        for flag, on, why in (
                ("--early-stopping", opts.early_stopping is not None, "tune_tir has no early stop"),
                ("--transfer", opts.transfer, "it cannot start from other machines' records"),
                ("--measure model", opts.measure == "model", "it measures every candidate itself"),
                ("--retime", opts.retime > 0, "it picks its best itself")):
            if on:
                raise TvmqError(f"--tuner metaschedule does not take {flag}: {why}")

    def next_batch(self, n: int) -> list[dict]:
        raise TvmqError("MetaSchedule proposes and measures in its own loop (MetaScheduleTuner.tune_task), "
                        "not batch by batch")

    def tune_task(self, task, opts, settings, runner, machine, log_path, prior: list[dict]) -> TuneResult:
        """Tune ``task`` with ``opts`` (a ``TuneOptions``); with ``opts.resume``, a task whose record at
        ``opts.trials`` is in ``prior`` (the log's records) is not tuned again."""
        if opts.resume and (done := resumed(task, opts.trials, prior, machine, settings.threads)) is not None:
            if opts.progress:
                print(f"tvmq tune: {task.workload.name} {task.variant}: metaschedule at {opts.trials} trials is "
                      "already in the log (--resume): not tuned again", file=sys.stderr)
            return done
        return tune_metaschedule(task, opts.trials, settings, runner, log_path, batch_size=opts.batch_size,
                                 seed=self.seed, machine=machine)


def resumed(task, trials: int, prior: list[dict], machine, threads: int) -> TuneResult | None:
    """The result of this machine's MetaSchedule run of ``task`` at ``trials`` in ``prior``, or None."""
    key = task.measure_key(machine.kind, threads)
    done = [r for r in prior if r.get("task_key") == key and r.get("tuner") == NAME and r.get("trial") == trials
            and r.get("failure") != "board"]
    if not done:
        return None
    r = min(done, key=median_time)  # the fastest verified one, if any
    ok = r.get("status") == "ok"
    return TuneResult(task, best_config=r["config"] if ok else None, best_time=median_time(r),
                      best_err=r.get("max_abs_err"), trials=trials, new_trials=0, statuses={r["status"]: 1})


def work_dir_for(task, log_path, trials: int) -> Path:
    """A fresh database directory for this run of ``task`` at ``trials``.

    MetaSchedule seeds its search from the database it is given, so a run at 200 trials in the
    directory of an earlier 64-trial run would start from that run's best: not a 200-trial run.
    Each run gets a new directory; earlier ones stay, since their records point at them.
    """
    base = Path(log_path).parent / "metaschedule" / task.target.name / task.key
    run = 1
    while (d := base / f"trials{trials}-run{run}").exists() and any(d.iterdir()):
        run += 1  # earlier runs keep their databases: their records point at them
    return d


def tune_metaschedule(task, trials, settings, runner, log_path, batch_size: int | None = None,
                      seed: int | None = None, machine=None) -> TuneResult:
    """Run ``tune_tir`` with our budget and settings; verify and time its best; append one record.

    ``batch_size``: its ``num_trials_per_iter`` (default 64), at most ``trials``; ``seed``: its search's
    seed (default ``settings.seed``).
    """
    import tvm  # lazy: TVM and its MetaSchedule are heavy and only this tuner needs them here
    from tvm.s_tir import meta_schedule as ms  # lazy: as above

    if runner.label != "local":
        raise TvmqError("the metaschedule peer runs on local targets only (its RPC runner is not wired up)")
    mod, cfg = ms_module(task)
    work_dir = work_dir_for(task, log_path, trials)
    work_dir.mkdir(parents=True, exist_ok=True)
    evaluator = ms.runner.EvaluatorConfig(number=settings.number, repeat=settings.repeat,
                                          min_repeat_ms=settings.min_repeat_ms,
                                          enable_cpu_cache_flush=settings.flush_cache)
    t0 = time.time()
    target = tvm.target.Target(task.target.target)
    db = ms.tir_integration.tune_tir(
        mod=mod, target=target, work_dir=str(work_dir), max_trials_global=trials,
        num_trials_per_iter=min(batch_size or MetaScheduleTuner.default_batch_size, trials),
        builder=ms.builder.LocalBuilder(max_workers=settings.build_workers, timeout_sec=settings.build_timeout_s),
        runner=ms.runner.LocalRunner(timeout_sec=settings.timeout_s, evaluator_config=evaluator,
                                     initializer=functools.partial(_worker_threads, settings.threads)),
        cost_model="xgb", num_tuning_cores=settings.build_workers,
        seed=settings.seed if seed is None else seed)
    sch = ms.tir_integration.compile_tir(db, mod, target)
    tuning_s = time.time() - t0
    record_cfg = {"metaschedule_workdir": str(work_dir), **{k: cfg[k] for k in cfg if k in ("layout", "ib", "ob")}}
    if sch is None:
        res = RunResult("build_error", error="MetaSchedule found no valid schedule")
    else:
        with tempfile.TemporaryDirectory() as d:
            lib = os.path.join(d, "ms.so")
            tvm.compile(sch.mod, target=target).export_library(lib)
            (res,) = runner.run([BuildResult(cfg, "ok", lib)], TaskVerifier(task, settings.seed), settings)
    recordlog.append(log_path, recordlog.make_record(task, record_cfg, res, runner.label, settings, NAME, trials,
                                                     machine))
    return TuneResult(task, best_config=record_cfg if res.ok else None, best_time=res.median if res.ok else float("inf"),
                      best_err=res.max_abs_err, trials=trials, new_trials=trials, tuning_s=tuning_s,
                      statuses={res.status: 1})


def _worker_threads(threads: int):
    # Runs in MetaSchedule's measurement worker process (the runner's initializer), never in the calling
    # process: it sets the worker's own environment before its TVM thread pool starts (which reads it).
    os.environ["TVM_NUM_THREADS"] = str(threads)
