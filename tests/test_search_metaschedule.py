"""The MetaSchedule adapter: a tuner picked by name, with the same budget, flags and measurement; its best is recorded."""

import functools

import numpy as np
import pytest

import tvmq.search.metaschedule as msmod
from tvmq.build.metaschedule_db import best_schedule
from tvmq.errors import TvmqError
from tvmq.machine import this_machine
from tvmq.record import log as recordlog
from tvmq.run.base import RunResult
from tvmq.run.local import LocalRunner
from tvmq.run.settings import MeasureSettings
from tvmq.search import make_tuner
from tvmq.search.metaschedule import MetaScheduleTuner
from tvmq.search.session import TuneOptions, make_session, tune_tasks
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import ConvWorkload

TINY = ConvWorkload.from_dict({"name": "tiny", "c_in": 16, "h": 8, "w": 8, "c_out": 16, "k": 3, "stride": 1, "pad": 1})
TASK = Task.make(TINY, "float", get_target("host"))


class FakeRunner:
    label = "local"

    def close(self):
        pass


def test_it_is_a_tuner_picked_by_name_like_the_others():
    t = make_tuner("metaschedule", TASK.space(), seed=3)
    assert isinstance(t, MetaScheduleTuner) and t.own_loop and t.seed == 3
    with pytest.raises(TvmqError, match="its own loop"):
        t.next_batch(8)


@pytest.mark.parametrize("flag, kw", [("--early-stopping", dict(early_stopping=16)), ("--transfer", dict(transfer=True)),
                                      ("--measure model", dict(measure="model"))])
def test_a_flag_it_cannot_honour_is_refused_naming_it(flag, kw):
    with pytest.raises(TvmqError, match=f"^--tuner metaschedule does not take {flag}: "):
        TuneOptions(tuner="metaschedule", **kw)
    TuneOptions(tuner="xgb", **kw)  # the others take it


def test_batch_size_is_its_num_trials_per_iter_with_its_own_default():
    assert TuneOptions(tuner="metaschedule").batch_size == 64 and TuneOptions().batch_size == 8
    assert TuneOptions(tuner="metaschedule", batch_size=5).batch_size == 5


def test_it_cannot_share_a_models_budget_batch_by_batch(tmp_path):
    with pytest.raises(TvmqError, match="--tuner metaschedule runs its own search loop"):
        make_session(TASK, TuneOptions(tuner="metaschedule"), MeasureSettings(), FakeRunner(), this_machine(),
                     tmp_path / "l.jsonl", [], [], None)


def _record(trials, settings, ms=1.0):
    res = RunResult("ok", [ms / 1e3] * 3, max_abs_err=0.0)
    return recordlog.make_record(TASK, {"metaschedule_workdir": "x", "layout": "nchwc"}, res, "local", settings,
                                 "metaschedule", trials)


def test_resume_skips_a_task_tuned_at_the_same_trials_only(tmp_path, monkeypatch):
    settings, log = MeasureSettings(threads=1), tmp_path / "host.jsonl"
    recordlog.append(log, _record(4, settings, ms=2.0))
    recordlog.append(log, recordlog.make_record(TASK, {"metaschedule_workdir": "y"}, RunResult("build_error"), "local",
                                                settings, "metaschedule", 4))  # a later run that found nothing
    calls = []
    monkeypatch.setattr(msmod, "tune_metaschedule", lambda task, trials, *a, **kw: calls.append((trials, kw)))

    def run(trials, resume):
        opts = TuneOptions(trials=trials, tuner="metaschedule", resume=resume, progress=False, seed=7)
        return tune_tasks([TASK], opts, settings, FakeRunner(), this_machine(), log, logs=None)

    (res,) = run(4, True)
    assert calls == [] and res.best_time == pytest.approx(2e-3) and res.new_trials == 0 and res.trials == 4
    run(8, True)  # another budget: tuned
    run(4, False)  # no --resume: tuned again
    assert [t for t, _ in calls] == [8, 4] and calls[0][1]["batch_size"] == 64 and calls[0][1]["seed"] == 7


@pytest.mark.llvm
def test_every_setting_maps_one_to_one_onto_tune_tir(tmp_path, monkeypatch):
    from tvm.s_tir import meta_schedule as ms

    seen = {}
    monkeypatch.setattr(ms.tir_integration, "tune_tir", lambda **kw: seen.update(kw) or "db")
    monkeypatch.setattr(ms.tir_integration, "compile_tir", lambda db, mod, target: None)  # "found nothing"
    monkeypatch.setattr(ms.builder, "LocalBuilder", lambda **kw: ("builder", kw))
    monkeypatch.setattr(ms.runner, "LocalRunner", lambda **kw: ("runner", kw))
    settings = MeasureSettings(number=2, repeat=3, min_repeat_ms=7, timeout_s=9.0, flush_cache=True, threads=1,
                               build_workers=1, build_timeout_s=13.0, seed=5)
    opts = TuneOptions(trials=7, tuner="metaschedule", batch_size=3, seed=11, progress=False)
    (res,) = tune_tasks([TASK], opts, settings, FakeRunner(), this_machine(), tmp_path / "host.jsonl", logs=None)
    assert (seen["max_trials_global"], seen["num_trials_per_iter"], seen["seed"], seen["num_tuning_cores"]) == (7, 3, 11, 1)
    assert seen["builder"] == ("builder", dict(max_workers=1, timeout_sec=13.0))
    runner = seen["runner"][1]
    ev = runner["evaluator_config"]
    assert (ev.number, ev.repeat, ev.min_repeat_ms, ev.enable_cpu_cache_flush) == (2, 3, 7, True)
    assert runner["timeout_sec"] == 9.0
    init = runner["initializer"]  # --threads, set in the measurement worker process
    assert isinstance(init, functools.partial) and init.func is msmod._worker_threads and init.args == (1,)
    (rec,) = recordlog.read(tmp_path / "host.jsonl")
    assert rec["status"] == "build_error" and rec["trial"] == 7 and res.best_config is None


@pytest.mark.llvm
def test_metaschedule_tunes_verifies_and_records_its_best_and_resumes(tmp_path):
    log = tmp_path / "host.jsonl"
    runner = LocalRunner()
    opts = TuneOptions(trials=2, tuner="metaschedule", resume=True, progress=False)
    settings = MeasureSettings(repeat=2, min_repeat_ms=5, timeout_s=60, build_workers=1, build_timeout_s=120)
    try:
        (res,) = tune_tasks([TASK], opts, settings, runner, this_machine(), log, logs=None)
        (again,) = tune_tasks([TASK], opts, settings, runner, this_machine(), log, logs=None)  # --resume: no tuning
    finally:
        runner.close()
    (rec,) = recordlog.read(log)
    assert rec["tuner"] == "metaschedule" and rec["status"] == "ok" and rec["machine_kind"] == this_machine().kind
    assert res.best_time < float("inf") and res.best_time == pytest.approx(float(np.median(rec["times"])))
    assert again.new_trials == 0 and again.best_time == res.best_time and again.best_config == rec["config"]
    assert best_schedule(TASK, rec["config"]["metaschedule_workdir"]) is not None  # rebuildable without tuning
