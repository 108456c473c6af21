"""`tvmq bench --export`: onnxruntime's own int8 model as a side, and the per-layer breakdown (digits CNN)."""

import json
from pathlib import Path

import numpy as np
import pytest

from tvmq.bench import breakdown as BD
from tvmq.bench.memory import PeakMemory
from tvmq.bench.model import bench_model, calibration_inputs
from tvmq.cli import main
from tvmq.quantize import load_model
from tvmq.variants import QUANTIZATIONS

DATA = Path(__file__).resolve().parents[1] / "tvmq" / "data"
DIGITS, DIGITS_TEST = DATA / "digits_cnn.onnx", DATA / "digits_test.npz"


@pytest.fixture(scope="module")
def digits_int8(tmp_path_factory):
    """The digits CNN exported as int8, calibrated on the first 64 test digits (default schedules)."""
    d = tmp_path_factory.mktemp("digits") / "int8"
    rc = main(["export", "--model", str(DIGITS), "--quantize", "int8", "--calib", str(DIGITS_TEST), "--out", str(d)])
    assert rc == 0
    return d


def test_calibration_inputs_follow_the_export():
    """The int8 peer calibrates on what the export did: the --calib file's first samples, else the
    export's seeded uniform inputs over the input range."""
    model = load_model(str(DIGITS))
    info = {"input": {"shape": [1, 1, 8, 8], "range": [0.0, 1.0]},
            "quantize": {"calibration": {"file": str(DIGITS_TEST), "samples": 64}}}
    x, where = calibration_inputs(info, model)
    assert x.shape == (64, 1, 8, 8) and where == {"file": str(DIGITS_TEST), "samples": 64}
    np.testing.assert_array_equal(x, np.load(DIGITS_TEST)["x"][:64].astype(np.float32))
    # no --calib: export/model.py draws default_rng(seed 0).uniform(range, (samples, *dims[1:]))
    info["quantize"]["calibration"] = {"file": None, "samples": 16, "random_range": [-1.0, 1.0]}
    x, where = calibration_inputs(info, model)
    np.testing.assert_array_equal(x, np.random.default_rng(0).uniform(-1.0, 1.0, (16, 1, 8, 8)).astype(np.float32))
    # a float export (no calibration): what --quantize int8 would have used, 64 samples over the input range
    info["quantize"]["calibration"] = None
    x, where = calibration_inputs(info, model)
    assert x.shape == (64, 1, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0 and where["random_range"] == [0.0, 1.0]
    info["quantize"]["calibration"] = {"file": "no/such.npz", "samples": 64}
    with pytest.raises(Exception, match="pass its path with --calib"):
        calibration_inputs(info, model)


def test_classify_calls():
    k = {"k00_conv1__int8"}
    assert BD.classify("k00_conv1__int8", [], k) == "tvmq kernel"
    assert BD.classify("vm.builtin.alloc_tensor", [], k) == "VM"
    assert BD.classify("transpose3", [(1, 2, 4, 4, 8)], k) == "layout change"
    assert BD.classify("add1", [(1, 16, 4, 4), (1, 16, 1, 1), (1, 16, 4, 4)], k) == "bias add"
    assert BD.classify("add7", [(1, 64, 56, 56), (1, 64, 56, 56), (1, 64, 56, 56)], k) == "residual add"
    assert BD.classify("add2", [(1, 10, 1, 1), (1, 10, 1, 1), (1, 10, 1, 1)], k) == "bias add"  # a dense layer's
    assert BD.classify("max_pool2d1", [], k) == "pooling"
    assert BD.classify("conv2d3", [], k) == "Relax conv2d (no tvmq kernel)"
    assert BD.classify("clip2", [], k) == "activation"
    assert BD.classify("concatenate", [], k) == "concat"
    assert BD.classify("lrn_something", [], k) == "other glue"
    assert BD.classify("mean", [], k) == "pooling" and BD.classify("adaptive_avg_pool2d3", [], k) == "pooling"
    # fused glue: the kinds of its operators (a Relax conv2d absorbs its epilogue, quantization its
    # multiply/add/clip/cast, a reshape counts only alone)
    assert BD.ops_of("fused_transpose1_reshape1_maximum_minimum") == ["transpose", "reshape", "maximum", "minimum"]
    assert BD.classify("fused_transpose5_reshape7_maximum3_minimum3", [], k) == "layout change + activation"
    assert BD.classify("fused_conv2d2_add2_maximum3_minimum3", [], k) == "Relax conv2d (no tvmq kernel)"
    assert BD.classify("fused_multiply1_tir_round1_add1_tir_clip1_cast1", [], k) == "quantize activations"
    assert BD.classify("fused_multiply_tir_round_add_tir_clip_cast_reshape_transpose", [], k) == \
        "quantize activations + layout change"
    assert BD.classify("fused_reshape5_reshape6", [], k) == "reshape / slice / copy"
    assert BD.classify("fused_layout_transform_max_pool2d", [], k) == "layout change + pooling"
    # unfused, the int8 export's activation quantization astype(clip(round(x * 1/s) + zp, 0, 255), uint8)
    # is recognised as a chain of calls around each round
    syms = ["transpose1", "multiply", "tir_round", "add3", "tir_clip", "cast", "k00", "relu", "clip4"]
    assert BD._quantize_chains(syms) == {1, 2, 3, 4, 5}


@pytest.mark.llvm
def test_onnxruntime_int8_side_runs_and_is_verified(digits_int8):
    """onnxruntime's own static int8 model of the same float CNN: timed, smaller, close to float."""
    r = bench_model(digits_int8, data=str(DIGITS_TEST), threads=2, repeat=3, sides=("onnxruntime_int8",))
    assert r["sides"] == ["tvmq", "onnxruntime", "onnxruntime_int8"]
    assert r["onnxruntime_int8_ms"] > 0 and r["onnxruntime_ms"] > 0
    # calibrated on exactly the export's calibration inputs (its manifest)
    man = json.loads((digits_int8 / "manifest.json").read_text())
    assert r["onnxruntime_int8_calibration"] == man["model"]["quantize"]["calibration"]
    assert r["onnxruntime_int8_preprocessed"] and r["onnxruntime_int8_qdq_nodes"]["QuantizeLinear"] > 0
    # int8 weights: the QDQ file is well under the float file (2.5k weights; graph overhead remains)
    assert r["onnxruntime_int8_bytes"] < 0.7 * r["onnx_bytes"]
    # verified: its output is within the project's int8 tolerance of float onnxruntime (5e-2 of the
    # output's range: uint8 activations with one range per tensor; measured here about 5e-3) ...
    assert r["onnxruntime_int8_vs_float_rel"] < QUANTIZATIONS["int8"].tolerance
    # ... and its top-1 on the 540 test digits is within 2 points of the float model's (0.9778)
    assert r["top1_onnxruntime_int8"] >= r["top1_onnx_float"] - 0.02


@pytest.mark.llvm
def test_bench_export_breakdown_and_int8_row(digits_int8, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = main(["bench", "--export", str(digits_int8), "--data", str(DIGITS_TEST), "--repeat", "3", "--breakdown",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    report = (out / "report.md").read_text()
    for row in ("tvmq export (int8 8-bit)", "onnxruntime (float)", "onnxruntime int8 (its own static quantization",
                "TVM Relax untuned (float)"):
        assert row in report and row in cap.out, row
    r = json.loads((out / "results.json").read_text())
    b = r["breakdown"]
    assert (out / "breakdown.png").stat().st_size > 5000
    md = (out / "breakdown.md").read_text()
    # every tvmq kernel of the export is a row, named, with its layers
    man = json.loads((digits_int8 / "manifest.json").read_text())
    names = {f["name"] for f in man["functions"]}
    assert names == {"k00_conv1__int8", "k01_conv2__int8", "k02_fc__int8"}
    rows = {f["function"]: f for f in b["functions"]}
    for n in names:
        assert rows[n]["kind"] == "tvmq kernel" and rows[n]["calls"] == 1 and rows[n]["ms"] > 0
        assert f"`{n}`" in md
    assert rows["k00_conv1__int8"]["layers"] == ["conv1"]
    kinds = {k["kind"]: k for k in b["kinds"]}
    assert "tvmq kernel" in kinds, kinds
    assert kinds.get("other glue", {"share": 0.0})["share"] < 0.2, kinds  # the glue is mostly recognised
    # shares sum to 100%, by function and by kind
    assert sum(f["share"] for f in b["functions"]) == pytest.approx(1.0, abs=1e-6)
    assert sum(k["share"] for k in b["kinds"]) == pytest.approx(1.0, abs=1e-6)
    assert b["output_unchanged"] and b["network_ms"] > 0
    assert "## By kind" in md and "## By function" in md and "breakdown.md" in report
    # peak memory of each side, each loaded and run in a fresh process: the export holds at least its
    # weights' tensors; onnxruntime's session at least its float weights (2.5k floats) and its arena
    assert "peak memory MB" in report
    if PeakMemory.supported():  # Linux, outside sandboxes that forbid resetting the peak
        for k in ("tvmq_mem_bytes", "onnxruntime_mem_bytes", "onnxruntime_int8_mem_bytes", "relax_untuned_mem_bytes"):
            assert isinstance(r[k], int) and r[k] >= 0, (k, r[k])
        assert r["onnxruntime_mem_bytes"] > 10_000


def test_ort_quantize_converts_old_opsets(tmp_path):
    """A float model below opset 13 (the onnx light models are opset 9) is converted before
    quantize_static: per-channel DequantizeLinear needs its axis attribute."""
    import onnx
    import onnxruntime as ort

    from tvmq.bench.model import ort_quantize_int8

    model = load_model(str(DIGITS))  # Conv, Relu, Flatten, Gemm: the same at opset 11
    model.opset_import[0].version = 11
    onnx.checker.check_model(model)
    x = np.load(DIGITS_TEST)["x"][:32].astype(np.float32)
    q = ort_quantize_int8(model, x, tmp_path / "int8.onnx")
    assert q["note"] == "converted from opset 11 to 13 first" and q["preprocessed"]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    y = ort.InferenceSession(str(tmp_path / "int8.onnx"), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    yf = ort.InferenceSession(str(DIGITS), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(y - yf).max() / np.abs(yf).max() < QUANTIZATIONS["int8"].tolerance
