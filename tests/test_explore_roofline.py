"""Bytes a kernel reads against the roofline; the peak estimate is labelled as one."""

from explore_fixtures import A53, X86_ZEN4, tiny_task

from tvmq.explore import roofline as R
from tvmq.ops import make_op


def test_traffic_by_role_codebook():
    task = tiny_task("codebook")
    op = make_op(task.op_name, task.workload, **task.params, layout="nchwc", ib=16, ob=16, padding="hard")
    t = R.traffic(op)
    assert t["indices"] == 32 * 16 * 3 * 3  # one byte per 5-bit index
    assert t["codebook"] == 32 * 4
    assert t["activations"] == 16 * 8 * 8 * 4
    assert t["output"] == 32 * 8 * 8 * 4


def test_estimate_is_labelled_and_int8_is_4x():
    f = R.estimate_peak(X86_ZEN4, "float", False)
    i = R.estimate_peak(X86_ZEN4, "int8", True)
    assert f.label.startswith("ESTIMATE") and i.gflops == 4 * f.gflops
    assert R.estimate_peak(A53, "float", False).gflops < f.gflops
    assert R.estimate_peak(X86_ZEN4, "float", False, peak_gflops=99.0).gflops == 99.0


def test_roofline_bound_and_share():
    task = tiny_task("float")
    op = make_op(task.op_name, task.workload, layout="nchwc", ib=16, ob=16, padding="hard")
    peak = R.Peak(100.0, 10.0, "test")
    r = R.roofline(op, task.workload.flops, peak, measured_s=task.workload.flops / 50e9)
    assert r["roof_gflops"] == min(100.0, r["intensity"] * 10.0)
    assert abs(r["gflops"] - 50.0) < 1e-6
    assert "% of the roof" in R.text(r)
