"""The whole-model task scheduler, driven by fake measurements (pure Python)."""

import numpy as np

from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.search import RandomTuner
from tvmq.search.driver import TuneSession
from tvmq.search.scheduler import ModelTask, estimate_s, schedule
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

SERVER = get_target("server")


def session(layer, scale, seed=0):
    task = Task.make(resolve(layer)[0], "float", SERVER)
    rng = np.random.default_rng(seed)

    def measure(cfgs):  # each task's times fall as it is tuned: random draws around ``scale``
        return [RunResult("ok", [scale * (0.5 + rng.random())]) for _ in cfgs]

    return TuneSession(task, RandomTuner(task.space(), seed), measure, settings=MeasureSettings())


def test_budget_is_spent_on_the_tasks_that_cost_the_model_most():
    big = ModelTask(session("alexnet.conv2", 1e-2), calls=4)  # 4 calls of a slow kernel
    small = ModelTask(session("alexnet.conv5", 1e-4, 1), calls=1)
    out = schedule([big, small], budget=64, batch=8)
    assert out["trials"] == 64 == big.trials + small.trials
    assert small.trials >= 8 and big.trials > small.trials  # everyone gets a first batch, then gain decides
    assert out["estimate_s"] == estimate_s([big, small]) == 4 * big.best + small.best
    assert out["untuned"] == []


def test_a_budget_below_the_task_count_names_the_untuned():
    tasks = [ModelTask(session(f"alexnet.conv{i}", 1e-3, i)) for i in (2, 3, 4)]
    out = schedule(tasks, budget=2, batch=1)
    assert out["trials"] == 2 and len(out["untuned"]) == 1 and out["estimate_s"] is None
