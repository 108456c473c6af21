"""Tuners on real timings: a replay of committed records (AMD Zen 4, alexnet conv3 float), no compiler needed."""

from pathlib import Path

import numpy as np
import pytest

from tvmq.record import log as recordlog
from tvmq.search import make_tuner
from tvmq.search.driver import tune
from tvmq.search.replay import replay
from tvmq.targets import TargetInfo
from tvmq.task import Task
from tvmq.workload import resolve

LOG = Path(__file__).resolve().parents[1] / "autotune_logs" / "amd-znver4-2c" / "compare" / "host.jsonl"
ZEN4 = TargetInfo(name="host", target={"kind": "llvm", "mcpu": "znver4", "num-cores": 2}, arch="x86_64")


@pytest.fixture(scope="module")
def conv3():
    task = Task.make(resolve("alexnet.conv3")[0], "float", ZEN4)
    recs = [r for r in recordlog.read(LOG, warn=False) if r["workload"]["name"] == "conv3" and r["variant"] == "float"
            and r["tuner"] in ("xgb", "random")]
    space, measure = replay(recs, task.space())
    best = min(float(np.median(r["times"])) for r in recs if r["status"] == "ok")
    return task, space, measure, best


def test_replay_answers_with_the_recorded_times(conv3):
    task, space, measure, best = conv3
    assert len(space.recorded) > 100
    results = measure(space.recorded)
    ok = [r.median for r in results if r.ok]
    assert min(ok) == pytest.approx(best) and all(r.status != "run_error" or "replay" not in r.error for r in results)


@pytest.mark.parametrize("name", ["xgb", "random"])
def test_tuners_on_real_timings_respect_the_budget_and_never_repeat(conv3, name):
    task, space, measure, best = conv3
    res = tune(task, make_tuner(name, space, seed=0), measure, 48, progress=False)
    assert res.trials == 48 and res.best_time >= best


def test_xgb_reaches_most_of_the_recorded_best_in_48_trials(conv3):
    task, space, measure, best = conv3
    res = tune(task, make_tuner("xgb", space, seed=0), measure, 48, progress=False)
    assert best / res.best_time >= 0.9
