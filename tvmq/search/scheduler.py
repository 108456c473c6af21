"""Spend one trial budget across the tasks of a whole model (Ansor's gradient-based task scheduler).

The model's latency is estimated as sum(calls_i x best_time_i). Every task first gets one batch
(its default schedule is in it, so no task is left without a measured kernel while the budget
lasts); then each batch goes to the task expected to cut the estimate most per trial:

    gain_i = calls_i x max(recent_i, optimistic_i)

``recent_i``: how fast the task's best time fell over its last ``window`` trials (per trial);
``optimistic_i``: ``best_time_i / trials_i`` x ``optimism``, the gain if the next trials did as
well as the average so far. A task whose space is exhausted stops getting trials.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class ModelTask:
    """One distinct kernel of a model: its tuning session and how often the network calls it."""

    session: object  # search.driver.TuneSession
    calls: int = 1
    history: list = field(default_factory=list)  # best time after each of its trials

    @property
    def best(self) -> float:
        return self.session.res.best_time

    @property
    def trials(self) -> int:
        return self.session.res.trials


def estimate_s(tasks: list[ModelTask]) -> float | None:
    """The model's kernel time: sum(calls x best), or None while a task has no verified kernel."""
    if any(t.best == float("inf") for t in tasks):
        return None
    return sum(t.calls * t.best for t in tasks)


def gain(t: ModelTask, window: int = 8, optimism: float = 0.5) -> float:
    """Expected cut of the model's latency per trial given to ``t`` (seconds)."""
    if t.session.exhausted:
        return -1.0
    if t.best == float("inf"):
        return float("inf")  # nothing verified yet: any kernel at all is the biggest gain
    h = t.history
    recent = (h[-window - 1] - h[-1]) / window if len(h) > window and h[-window - 1] < float("inf") else 0.0
    return t.calls * max(recent, optimism * t.best / max(t.trials, 1))


def schedule(tasks: list[ModelTask], budget: int, batch: int = 8, time_budget_s: float | None = None,
             log=None) -> dict:
    """Give ``budget`` trials (and at most ``time_budget_s`` seconds) to ``tasks``; returns a summary."""
    t0, used, rounds = time.time(), sum(t.trials for t in tasks), 0  # resumed trials count

    def give(t: ModelTask, n: int) -> int:
        nonlocal used, rounds
        got = t.session.step(n)
        t.history += [t.best] * got
        used += got
        rounds += 1
        if log:
            est = estimate_s(tasks)
            wl = t.session.task.workload
            log(f"[model] {wl.name} {t.session.task.variant} (x{t.calls}): {t.trials} trials, best "
                f"{t.best * 1e3:.3f} ms; model estimate " + (f"{est * 1e3:.2f} ms" if est is not None else
                                                              f"- ({sum(x.best == float('inf') for x in tasks)} "
                                                              "task(s) without a kernel yet)"))
        return got

    def out_of_time() -> bool:
        return time_budget_s is not None and time.time() - t0 > time_budget_s

    for t in sorted(tasks, key=lambda t: -t.calls * t.session.task.workload.flops):  # one batch each first
        if t.trials:
            continue
        if used >= budget or out_of_time():
            break
        give(t, min(batch, budget - used))
    while used < budget and not out_of_time():
        best = max(tasks, key=gain)
        if gain(best) < 0:
            break  # every space exhausted
        give(best, min(batch, budget - used))
    untuned = [f"{t.session.task.workload.name} {t.session.task.variant}" for t in tasks if t.trials == 0]
    return dict(trials=used, rounds=rounds, seconds=time.time() - t0, estimate_s=estimate_s(tasks), untuned=untuned)


def say(msg: str):
    print(msg, file=sys.stderr, flush=True)
