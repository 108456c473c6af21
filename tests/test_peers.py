"""Peers of the benchmark: onnxruntime, numpy im2col + BLAS, the measured peak, perf counters."""

import os

import numpy as np
import pytest

from tvmq.ops.reference import conv2d_nchw
from tvmq.peers import child, numpy_im2col, onnxruntime_conv, peak, perf
from tvmq.workload import ConvWorkload

# odd shapes on purpose: stride 2 x 1, asymmetric padding, batch 2
ODD = ConvWorkload("odd", 2, 5, 11, 9, 7, 3, 2, (2, 1), (1, 0, 2, 1))
SMALL = ConvWorkload("small", 1, 8, 12, 12, 16, 3, 3, (1, 1), (1, 1, 1, 1))
FAST = dict(repeat=2, min_repeat_ms=1)


@pytest.mark.parametrize("wl", [ODD, SMALL], ids=lambda w: w.name)
def test_onnxruntime_conv_and_qlinearconv_verify(wl):
    for kind in onnxruntime_conv.KINDS:
        r = onnxruntime_conv.run(kind, wl, threads=1, **FAST)
        assert r.ok, (kind, r.error)
        assert len(r.times) == 2 and min(r.times) > 0 and r.median < float("inf")
    assert onnxruntime_conv.run_conv(wl, threads=2, **FAST).max_abs_err < 1e-4
    assert onnxruntime_conv.run_qlinearconv(wl, threads=1, **FAST).max_abs_err <= 1.0


def test_onnx_models_use_opset_17_ir_9():
    x, w = onnxruntime_conv.conv_inputs(ODD)
    m = onnxruntime_conv.conv_model(ODD, w)
    assert m.ir_version == 9 and m.opset_import[0].version == 17
    assert [n.op_type for n in m.graph.node] == ["Conv"]
    xq, wq, q = onnxruntime_conv.qlinear_inputs(ODD)
    mq = onnxruntime_conv.qlinearconv_model(ODD, wq, q)
    assert [n.op_type for n in mq.graph.node] == ["QLinearConv"]
    attrs = {a.name: list(a.ints) for a in mq.graph.node[0].attribute if a.ints}
    assert attrs["pads"] == [1, 0, 2, 1] and attrs["strides"] == [2, 1]


def test_onnxruntime_wrong_model_is_caught(monkeypatch):
    """A model that computes something else is reported as wrong_result, with no time."""
    real = onnxruntime_conv.conv_model
    monkeypatch.setattr(onnxruntime_conv, "conv_model", lambda wl, w: real(wl, w * 1.01))
    r = onnxruntime_conv.run_conv(SMALL, threads=1, **FAST)
    assert r.status == "wrong_result" and r.times == [] and r.max_abs_err > 1e-4
    realq = onnxruntime_conv.qlinearconv_model
    monkeypatch.setattr(onnxruntime_conv, "qlinearconv_model",
                        lambda wl, wq, q: realq(wl, np.clip(wq.astype(np.int16) + 9, -128, 127), q))
    r = onnxruntime_conv.run_qlinearconv(SMALL, threads=1, **FAST)
    assert r.status == "wrong_result" and r.times == []


def test_qlinear_reference_saturates_and_rounds():
    xq, wq, q = onnxruntime_conv.qlinear_inputs(SMALL)
    y = onnxruntime_conv.qlinear_reference(xq, wq, SMALL, q)
    assert y.min() >= 0 and y.max() <= 255 and np.all(y == np.rint(y))
    assert 0 < np.mean((y == 0) | (y == 255)) < 0.05  # the output scale keeps saturation rare


def test_u8s8_saturation_rule_and_7bit_weights(monkeypatch):
    """Full-range weights where the CPU has an int8 dot product; 7-bit ones (pair sums fit int16) where
    onnxruntime's u8 x s8 kernels are vpmaddubsw ones (an x86 CPU with AVX2 only, such as Zen 3)."""
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert onnxruntime_conv.u8s8_saturates({"avx2", "fma"})
    assert not onnxruntime_conv.u8s8_saturates({"avx2", "avx512f", "avx512_vnni"})
    assert not onnxruntime_conv.u8s8_saturates({"avx2", "avx_vnni"})
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert not onnxruntime_conv.u8s8_saturates(set())
    xq, wq, q = onnxruntime_conv.qlinear_inputs(SMALL, weight_bits=7)
    assert wq.min() >= -63 and wq.max() <= 63 and wq.min() < -50 and wq.max() > 50
    pairs = 255 * (np.abs(wq.astype(np.int32))[..., :-1] + np.abs(wq.astype(np.int32))[..., 1:])
    assert pairs.max() <= 32767  # no vpmaddubsw pair sum can saturate
    y = onnxruntime_conv.qlinear_reference(xq, wq, SMALL, q)
    assert 0 < np.mean((y == 0) | (y == 255)) < 0.05  # the scale follows the narrower weights


def test_onnxruntime_in_a_child_process(monkeypatch):
    """The bench's onnxruntime rows come from a child process: verified there, times and errors back."""
    for kind in onnxruntime_conv.KINDS:
        r = onnxruntime_conv.run_isolated(kind, SMALL, threads=2, **FAST)
        assert r.ok and r.threads == 2 and len(r.times) == 2 and r.max_abs_err is not None, r.error
    monkeypatch.setattr(child.sys, "executable", "/bin/false")
    r = onnxruntime_conv.run_isolated("conv", SMALL, threads=1, **FAST)
    assert r.status == "run_error" and r.times == []


def test_numpy_im2col_matches_reference_in_process():
    x, w = onnxruntime_conv.conv_inputs(ODD)
    np.testing.assert_allclose(numpy_im2col.im2col_conv(x, w, ODD), conv2d_nchw(x, w, ODD), atol=1e-4)
    r = numpy_im2col.measure_here(ODD, **FAST)
    assert r.ok and len(r.times) == 2


def test_numpy_im2col_child_process_threads_and_coretype(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    env = numpy_im2col.child_env(2)
    assert "OPENBLAS_CORETYPE" not in env and env["OPENBLAS_NUM_THREADS"] == "2"
    assert numpy_im2col.child_env(1, keep_coretype=True)["OPENBLAS_CORETYPE"] == "Haswell"
    r = numpy_im2col.run(SMALL, threads=2, **FAST)
    assert r.ok, r.error
    assert r.threads == 2 and r.info["coretype"] is None and r.max_abs_err < 1e-4


def test_numpy_im2col_child_failure_is_reported(monkeypatch):
    monkeypatch.setattr(child.sys, "executable", "/bin/false")
    r = numpy_im2col.run(SMALL, threads=1, **FAST)
    assert r.status == "run_error" and r.times == []


# -- the peak -------------------------------------------------------------------------------------------
@pytest.mark.llvm
def test_fma_and_copy_kernels_verify_and_time(tmp_path):
    import tvm

    from tvmq.run.local import LocalRunner
    from tvmq.run.settings import MeasureSettings
    from tvmq.targets import get_target

    host = get_target("host")
    lanes = peak.vector_lanes(host.tvm_target())
    assert lanes in (4, 8, 16)
    k = peak.FmaKernel(blocks=2, lanes=lanes, reps=64)
    ex = tvm.compile(k.schedule().mod, target=host.tvm_target())
    if host.arch == "x86_64":
        asm = ex.mod.imports[0].inspect_source("asm") if ex.mod.imports else ex.mod.inspect_source("asm")
        assert "vfmadd" in asm  # FMA instructions, accumulators in registers
    r = LocalRunner()
    try:
        st = MeasureSettings(repeat=2, min_repeat_ms=1, threads=2)
        e = peak._run(k, str(tmp_path), "fma", host, r, st, 0, k.flops, (2, k.rows, k.cols), "gflops", 1e9)
        assert e["status"] == "ok" and e["verified"] and e["gflops"] >= e["median"] >= e["min"] > 0
        c = peak.CopyKernel(blocks=2, n=1 << 16, lanes=lanes)
        e = peak._run(c, str(tmp_path), "copy", host, r, st, 0, c.bytes, (c.n,), "gbps", 1e9)
        assert e["status"] == "ok" and e["gbps"] > 0
    finally:
        r.close()


@pytest.mark.llvm
def test_vnni_int8_peak_kernel_is_exact_and_uses_vpdpbusd(tmp_path):
    import tvm

    from tvmq.run.local import LocalRunner
    from tvmq.run.settings import MeasureSettings
    from tvmq.targets import get_target

    host = get_target("host")
    if not peak.has_vnni(host):
        pytest.skip("this CPU/target has no AVX-512 VNNI")
    k = peak.VnniKernel(blocks=2, reps=32)
    ex = tvm.compile(k.schedule(), target=host.tvm_target())
    mods = [ex.mod, *ex.mod.imports]
    asm = "".join(m.inspect_source("asm") for m in mods if m.kind == "llvm")
    assert asm.count("vpdpbusd") >= 24
    r = LocalRunner()
    try:
        st = MeasureSettings(repeat=2, min_repeat_ms=1, threads=2)
        e = peak._run(k, str(tmp_path), "vnni", host, r, st, 0, k.ops, k.out_shape, "gops", 1e9, "int32")
    finally:
        r.close()
    assert e["status"] == "ok" and e["verified"] and e["gops"] > 0


def test_int8_peak_note_where_not_measured():
    from tvmq.targets import get_target

    edge = get_target("edge")
    assert not peak.has_vnni(edge)
    assert "not measured" in peak.INT8_NOTE_NOT_X86 and "not measured" in peak.INT8_NOTE_NO_VNNI


def test_peak_reference_is_exact_and_merge_keeps_the_best():
    k = peak.FmaKernel(blocks=1, lanes=4, rows=2, col_vecs=1, k=8, reps=3)
    a, b = k.inputs()
    assert set(np.unique(a)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(k.reference([a, b]), 3 * np.einsum("pki,pkj->pij", a, b))
    assert k.flops == 2 * 3 * 8 * 2 * 4
    m1 = {"fp32": {1: {"gflops": 100.0}, 2: {"gflops": 150.0}}, "bandwidth": {1: {"gbps": 10.0}}}
    m2 = {"fp32": {1: {"gflops": 90.0}, 2: {"gflops": 190.0}}, "bandwidth": {1: {"gbps": 12.0}},
          "int8": {1: {"gops": 400.0}}}
    m1["int8"] = {1: {"gops": 450.0}}
    m = peak.merge(m1, m2)
    assert m["fp32"][1]["gflops"] == 100 and m["fp32"][2]["gflops"] == 190 and m["bandwidth"][1]["gbps"] == 12
    assert m["int8"][1]["gops"] == 450 and m["passes"] == 2
    assert peak.merge({"fp32": {}, "int8": "not measured"}, {"fp32": {}, "int8": "not measured"})["int8"] == \
        "not measured"
    v = peak.VnniKernel(blocks=1, col_vecs=1, k=2, reps=5)
    a, b = v.inputs()
    a8, b8 = a.view(np.uint8).reshape(1, 2, 6, 4), b.view(np.int8).reshape(1, 2, 1, 16, 4)
    want = 5 * np.einsum("pkib,pkjlb->pijl", a8.astype(np.int64), b8.astype(np.int64))
    np.testing.assert_array_equal(v.reference([a, b]), want)
    assert v.ops == 2 * 5 * 2 * 6 * 1 * 64


# -- perf -----------------------------------------------------------------------------------------------
def test_perf_parse_and_derived():
    text = ("1000,,cycles,100.00,,\n2500,,instructions,100.00,2.5,insn per cycle\n"
            "<not supported>,,cache-misses,0,100.00,,\n40,,cache-references,100.00,,\n")
    c = perf.parse(text)
    assert c["cycles"] == 1000 and c["instructions"] == 2500 and c["cache-misses"] is None
    d = perf.derived(c, 10)
    assert d["ipc"] == 2.5 and d["cycles_per_run"] == 100 and d["cache_miss_rate"] is None


def test_perf_available_says_why_not(monkeypatch):
    ok, why = perf.available()
    assert isinstance(ok, bool) and (ok or why)
    monkeypatch.setattr(perf.shutil, "which", lambda name: None)
    assert perf.available() == (False, "the perf tool is not installed")


def test_peers_do_not_change_tvm_thread_env():
    before = os.environ.get("TVM_NUM_THREADS")
    numpy_im2col.child_env(1)
    assert os.environ.get("TVM_NUM_THREADS") == before
