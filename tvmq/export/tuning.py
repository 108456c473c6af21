"""Tune a whole model: its distinct kernels, one trial budget, a task scheduler (``tune --model``).

The tasks are exactly those ``export --model`` builds (``model.model_tasks``), so the export then
picks up their records from the same logs with no extra flags.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TvmqError
from ..record import log as recordlog
from ..search.scheduler import ModelTask, schedule, say
from ..search.session import make_session, read_database
from .model import model_tasks


def tune_model(model_path, mopts, target, opts, settings, runner, machine, log_path, logs="autotune_logs",
               time_budget_s: float | None = None, progress: bool = True) -> dict:
    """Spend ``opts.trials`` trials (the whole model's budget) over its kernels; returns the scheduler's
    summary with one result per task."""
    from ..build import Builder  # starts compile workers: only when there is something to tune

    pairs = model_tasks(model_path, target, mopts)
    if not pairs:
        raise TvmqError(f"{model_path}: no convolution of this model runs on a tvmq kernel; nothing to tune")
    log_path = Path(log_path)
    prior = recordlog.read(log_path) if log_path.exists() else []
    db = read_database(logs, log_path, prior)
    if opts.trials < len(pairs):
        say(f"tvmq tune: warning: a budget of {opts.trials} trials is less than the model's {len(pairs)} kernels: "
            "the untuned ones keep their default schedule")
    builder = Builder(settings.build_workers, settings.build_timeout_s)
    try:
        tasks = [ModelTask(make_session(t, opts, settings, runner, machine, log_path, prior, db, builder), n)
                 for t, n in pairs]
        summary = schedule(tasks, opts.trials, opts.batch_size, time_budget_s, say if progress else None)
    finally:
        builder.close()
    summary["tasks"] = [dict(workload=t.session.task.workload.name, variant=t.session.task.variant, calls=t.calls,
                             trials=t.trials, best_ms=t.best * 1e3 if t.best < float("inf") else None,
                             gflops=t.session.best_rate or None, config=t.session.res.best_config)
                        for t in tasks]
    return summary
