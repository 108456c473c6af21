"""The performance model: parsing and counting (pure Python), llvm-mca's cycles, ranking and labels."""

import shutil

import pytest

from tvmq.errors import TvmqError
from tvmq.run import mca
from tvmq.targets import get_target

NEEDS_MCA = pytest.mark.skipif(shutil.which("llvm-mca") is None, reason="needs llvm-mca (Debian package 'llvm')")

A53_LOOP = """.LBB0_4:
\tldr\tq1, [x9], #16
\tfmla\tv0.4s, v1.4s, v2.s[0]
\tfmla\tv3.4s, v1.4s, v2.s[1]
\tsmlal\tv4.4s, v5.4h, v6.4h
\tsubs\tx10, x10, #1
\tb.ne\t.LBB0_4
"""


def test_work_per_iteration_is_counted_from_the_arithmetic():
    lines = A53_LOOP.splitlines()
    assert mca.macs_per_iteration(lines) == 4 + 4 + 4
    assert mca.macs_per_iteration(["\tvfmadd231ps\t%zmm1, %zmm2, %zmm3", "\tvpdpbusd\t%zmm1, %zmm2, %zmm4"]) == 16 + 64


def test_unknown_core_is_one_line():
    with pytest.raises(TvmqError, match="no performance model for -mcpu='znver9'"):
        mca.model_for(type("T", (), {"target": {"mcpu": "znver9"}})())
    assert mca.model_for(get_target("edge")).mcpu == "cortex-a53"


def test_missing_llvm_mca_is_one_line(monkeypatch):
    monkeypatch.setattr(mca, "LLVM_MCA", "llvm-mca-that-does-not-exist")
    with pytest.raises(TvmqError, match="llvm-mca is not installed"):
        mca.check_mca()


@NEEDS_MCA
def test_llvm_mca_times_the_loop_in_order_on_the_a53():
    cyc = mca.mca_cycles(A53_LOOP.splitlines(), mca.MODELS["cortex-a53"])
    assert 2.0 <= cyc <= 40.0  # 6 instructions, dual issue at best, FMAs 4 cycles apart at worst
    est = mca.estimate(A53_LOOP, "aarch64", macs=1.2e9, min_bytes=1e6, model=mca.MODELS["cortex-a53"], threads=4)
    assert est.macs_per_iter == 12 and est.iterations == pytest.approx(1e8)
    assert est.seconds == pytest.approx(max(est.compute_s, est.memory_s))
    slow = mca.estimate(A53_LOOP, "aarch64", macs=1.2e9, min_bytes=1e6, model=mca.MODELS["cortex-a53"], threads=1)
    assert slow.compute_s == pytest.approx(4 * est.compute_s)  # four cores, one thread


@NEEDS_MCA
@pytest.mark.llvm
def test_a_cross_compiled_kernel_is_modelled_and_labelled(tmp_path):
    from tvmq.build import Builder
    from tvmq.machine import this_machine
    from tvmq.record import log as recordlog
    from tvmq.record.select import choose
    from tvmq.run.settings import MeasureSettings
    from tvmq.search.driver import Measurer, tune
    from tvmq.search import make_tuner
    from tvmq.task import Task
    from tvmq.workload import ConvWorkload

    wl = ConvWorkload.from_dict({"name": "tiny", "c_in": 16, "h": 8, "w": 8, "c_out": 16, "k": 3, "stride": 1, "pad": 1})
    task = Task.make(wl, "float", get_target("edge"))
    model = mca.model_for(task.target)
    builder = Builder(2, 120, asm=True)
    try:
        res = tune(task, make_tuner("random", task.space(), 0), Measurer(task, builder, mca.ModelRunner(model, task),
                   MeasureSettings(threads=4)), 4, tmp_path / "edge.jsonl", 4, settings=MeasureSettings(threads=4),
                   runner_label="model", progress=False, machine=mca.model_machine(model, task.target))
    finally:
        builder.close()
    recs = recordlog.read(tmp_path / "edge.jsonl")
    assert res.best_time < 1.0 and all(r["modelled"] and r["runner"] == "model" for r in recs)
    assert {r["machine_kind"] for r in recs} == {"model-cortex-a53"}
    assert choose(task, recs, mca.model_machine(model, task.target)).record is None  # never chooses a schedule
    assert this_machine().kind != "model-cortex-a53"
