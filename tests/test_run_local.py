"""The local runner records failures as data (llvm tier)."""

import os

import numpy as np
import pytest

from tvmq.build import Builder
from tvmq.run.base import BuildResult
from tvmq.run.local import LocalRunner
from tvmq.run.settings import MeasureSettings
from tvmq.run.verify import TaskVerifier
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import ConvWorkload

pytestmark = pytest.mark.llvm
HOST = get_target("host")
WL = ConvWorkload("w", 1, 8, 12, 12, 16, 3, 3, (1, 1), (1, 1, 1, 1))


def export_unscheduled(op, path):
    import tvm

    tvm.compile(op.irmodule(), target=HOST.tvm_target()).export_library(str(path))
    return str(path)


@pytest.fixture(scope="module")
def runner():
    r = LocalRunner()
    yield r
    r.close()


def test_builder_and_runner_verify_and_time(runner):
    task = Task.make(WL, "float", HOST)
    space = task.space()
    cfgs = [space.default, space.sample(np.random.default_rng(0))]
    b = Builder(2)
    try:
        builds = b.build(task, cfgs + [dict(space.default, ob=48)])
    finally:
        pass
    assert [x.status for x in builds] == ["ok", "ok", "invalid"]
    res = runner.run(builds, TaskVerifier(task), MeasureSettings(repeat=3, min_repeat_ms=5))
    assert [r.status for r in res] == ["ok", "ok", "invalid"]
    assert all(len(r.times) == 3 and min(r.times) > 0 for r in res[:2])
    assert res[2].times == [] and "not one of" in res[2].error
    b.close()


def test_wrong_result_is_recorded_without_a_time(runner, tmp_path):
    from tvmq.ops import make_op

    shifted = ConvWorkload("w", 1, 8, 12, 12, 16, 3, 3, (1, 1), (2, 2, 0, 0))  # same shapes, other padding
    task = Task.make(WL, "float", HOST)
    ver = TaskVerifier(task)
    cfg = task.space().default
    op = make_op("float", shifted, layout="nchwc", ib=cfg["ib"], ob=cfg["ob"])
    lib = export_unscheduled(op, tmp_path / "wrong.so")
    (res,) = runner.run([BuildResult(cfg, "ok", lib)], ver, MeasureSettings(repeat=2))
    assert res.status == "wrong_result" and res.times == [] and res.max_abs_err > 0.01


def test_hung_candidate_is_killed_at_its_timeout(runner, tmp_path):
    from tvmq.ops import make_op

    big = ConvWorkload("big", 1, 256, 56, 56, 256, 3, 3, (1, 1), (1, 1, 1, 1))
    task = Task.make(big, "float", HOST)
    cfg = task.space().default
    op = make_op("float", big, layout="nchwc", ib=cfg["ib"], ob=cfg["ob"])
    lib = export_unscheduled(op, tmp_path / "slow.so")  # unscheduled: seconds per run
    (res,) = runner.run([BuildResult(cfg, "ok", lib)], TaskVerifier(task), MeasureSettings(timeout_s=1.0))
    assert res.status == "timeout" and res.times == []
    # The runner recovers: the next candidate runs in a fresh worker.
    small = Task.make(WL, "float", HOST)
    b = Builder(1)
    (good,) = runner.run(b.build(small, [small.space().default]), TaskVerifier(small), MeasureSettings(timeout_s=20))
    b.close()
    assert good.status == "ok"


def test_crash_on_load_is_a_run_error(runner, tmp_path):
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not a library")
    task = Task.make(WL, "float", HOST)
    (res,) = runner.run([BuildResult(task.space().default, "ok", str(bogus))], TaskVerifier(task), MeasureSettings())
    assert res.status == "run_error" and res.error
    assert os.path.exists(bogus)



def test_inputs_of_a_new_task_are_never_confused_with_freed_ones():
    """Regression: inputs were cached by id(); a freed inputs list's id is reused by the next one,
    and the next task's kernel ran on the old task's arrays."""
    from tvmq.run.local import LocalRunner

    runner = LocalRunner()
    try:
        for i in range(50):
            arrays = [np.full(3, i, dtype=np.int32)]  # the previous list is freed: its id comes back
            path = runner._inputs_file(arrays)
            assert runner._inputs_file(arrays) == path  # the same object: written once
            with np.load(path) as z:
                assert int(z["a0"][0]) == i
    finally:
        runner.close()


def test_the_best_kernel_is_not_compiled_again_to_count_its_instructions(runner, tmp_path, monkeypatch):
    import tvmq.report.asm as asm_mod
    from tvmq.machine import this_machine
    from tvmq.report.results import rows_from_results
    from tvmq.search.session import TuneOptions, tune_tasks

    task = Task.make(WL, "float", HOST)
    (res,) = tune_tasks([task], TuneOptions(trials=2, tuner="grid", progress=False, warm_start=False),
                        MeasureSettings(repeat=2, min_repeat_ms=5), runner, this_machine(), tmp_path / "t.jsonl",
                        logs=None)
    compiles, real = [], asm_mod.compile_mod
    monkeypatch.setattr(asm_mod, "compile_mod", lambda *a: compiles.append(a) or real(*a))
    (row,) = rows_from_results([res], "grid", "local")
    assert res.best_config is not None and compiles == []  # counted from the build that was measured
    assert row["asm_counts"] == asm_mod.key_instructions(task, res.best_config) and len(compiles) == 1
    assert row["asm_counts"]["vfmadd_ps"] > 0


def test_cold_weights_time_one_run_per_sample_after_a_flush():
    """TVM flushes before each sample only: with more runs per sample all but the first would be hot."""
    from types import SimpleNamespace

    import tvm

    from tvmq.run.timing import time_module

    class Mod:
        def __getitem__(self, name):
            return lambda *args: None

        def time_evaluator(self, func, dev, **kw):
            self.kw = kw
            return lambda *args: SimpleNamespace(results=[1e-3] * kw["repeat"])

    for flush, want in ((True, (1, 0, "cache_flush_cpu_non_first_arg")), (False, (4, 20, None))):
        mod = Mod()
        _, times = time_module(mod, tvm.cpu(0), [np.zeros(4, "float32")], ((4,), "float32"),
                               MeasureSettings(number=4, repeat=3, min_repeat_ms=20, flush_cache=flush))
        assert times == [1e-3] * 3
        assert (mod.kw["number"], mod.kw["min_repeat_ms"], mod.kw.get("f_preproc")) == want


def test_kernels_are_timed_on_one_thread_that_is_not_the_main_thread():
    """The timing thread's stack has the same offset in every worker process; the main thread's does not
    (ASLR), and a spilling kernel's speed follows it (tvmq/run/local.py)."""
    import threading

    from tvmq.run.local import on_timer_thread

    first, second = on_timer_thread(threading.get_ident), on_timer_thread(threading.get_ident)
    assert first == second != threading.main_thread().ident
    assert on_timer_thread(lambda a, b: a + b, 2, 3) == 5
