"""``metaschedule``: TVM's own auto-scheduler as the peer to beat.

It gets the same operator (the layout of our space's default config), the
same trial budget and the same measurement settings; its best schedule is
then verified and timed by tvmq's own runner so both are judged alike. Its
database is kept beside the records file (``autotune_logs/MACHINE-KIND/metaschedule/``) so the best schedule
can be rebuilt later without tuning.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

from ..errors import TvmqError
from ..record import log as recordlog
from ..build.metaschedule_db import ms_module
from ..run.base import BuildResult
from ..run.verify import TaskVerifier
from .driver import TuneResult
from ..run.base import RunResult


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


def tune_metaschedule(task, trials, settings, runner, log_path):
    """Run ``tune_tir`` with our budget and settings; verify and time its best; append one record."""
    import tvm
    from tvm.s_tir import meta_schedule as ms


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
        num_trials_per_iter=min(64, trials), runner=ms.runner.LocalRunner(
            timeout_sec=settings.timeout_s, evaluator_config=evaluator,
            initializer=functools.partial(_worker_threads, settings.threads)),
        cost_model="xgb", num_tuning_cores=settings.build_workers, seed=settings.seed)
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
    recordlog.append(log_path, recordlog.make_record(task, record_cfg, res, runner.label, settings, "metaschedule",
                                                     trials))
    return TuneResult(task, best_config=record_cfg if res.ok else None, best_time=res.median if res.ok else float("inf"),
                      best_err=res.max_abs_err, trials=trials, new_trials=trials, tuning_s=tuning_s,
                      statuses={res.status: 1})


def _worker_threads(threads: int):
    # Runs in MetaSchedule's measurement worker, before its TVM thread pool starts (which reads this).
    os.environ["TVM_NUM_THREADS"] = str(threads)
