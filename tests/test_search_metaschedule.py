"""The MetaSchedule adapter: TVM's tuner gets the same budget and measurement, and its best is recorded."""

import numpy as np
import pytest

from tvmq.build.metaschedule_db import best_schedule
from tvmq.machine import this_machine
from tvmq.record import log as recordlog
from tvmq.run.local import LocalRunner
from tvmq.run.settings import MeasureSettings
from tvmq.search.metaschedule import tune_metaschedule
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import ConvWorkload

TINY = ConvWorkload.from_dict({"name": "tiny", "c_in": 16, "h": 8, "w": 8, "c_out": 16, "k": 3, "stride": 1, "pad": 1})


@pytest.mark.llvm
def test_metaschedule_tunes_verifies_and_records_its_best(tmp_path):
    task = Task.make(TINY, "float", get_target("host"))
    log = tmp_path / "host.jsonl"
    runner = LocalRunner()
    try:
        res = tune_metaschedule(task, 2, MeasureSettings(repeat=2, min_repeat_ms=5, timeout_s=60), runner, log)
    finally:
        runner.close()
    (rec,) = recordlog.read(log)
    assert rec["tuner"] == "metaschedule" and rec["status"] == "ok" and rec["machine_kind"] == this_machine().kind
    assert res.best_time < float("inf") and res.best_time == pytest.approx(float(np.median(rec["times"])))
    assert best_schedule(task, rec["config"]["metaschedule_workdir"]) is not None  # rebuildable without tuning
