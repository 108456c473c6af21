"""Whole-model export: ONNX preparation (weights, BN, Gemm as 1x1 Conv) and a real architecture end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_fixtures import save_graph
from tvmq.cli import main

LIGHT = Path(__import__("onnx").__file__).parent / "backend" / "test" / "data" / "light"
SQUEEZENET = LIGHT / "light_squeezenet.onnx"
ALEXNET = LIGHT / "light_bvlc_alexnet.onnx"
RESNET = LIGHT / "light_resnet50.onnx"
needs_light = pytest.mark.skipif(not SQUEEZENET.is_file(), reason="onnx's light backend test models are not installed")


def ort(model, x):
    from tvmq.quantize.evaluate import run

    return run(model, x, [model.graph.output[0].name], batch=len(x))[0]


@needs_light
def test_materialize_gives_light_models_real_random_weights():
    import onnx
    from onnx import numpy_helper

    from tvmq.export.model import materialize

    src = onnx.load(str(ALEXNET))
    m = materialize(src, 0)
    assert not [n for n in m.graph.node if n.op_type == "ConstantOfShape"]
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert [i.name for i in m.graph.input] == ["data_0"] and m.ir_version >= 4
    w = inits["conv1_w_0"]
    assert w.shape == (96, 3, 11, 11) and w.std() > 0.01 and len(np.unique(w)) > 1000
    assert np.array_equal(materialize(src, 0).graph.initializer[0].raw_data, m.graph.initializer[0].raw_data)
    plain = {t.name: numpy_helper.to_array(t) for t in materialize(src, None).graph.initializer}
    assert np.all(plain["conv1_w_0"] == np.float32(0.02))  # without a seed: the model's own constants


@needs_light
def test_sum_becomes_adds_and_keeps_the_function():
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from tvmq.export.onnx_rewrites import sums_as_adds

    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in "abc"]
    g = helper.make_graph([helper.make_node("Sum", ["a", "b", "c"], ["y"], name="s"),
                           helper.make_node("Sum", ["y"], ["z"], name="one")], "sums", vi,
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    feeds = {n: np.random.default_rng(k).normal(size=(2, 3)).astype(np.float32) for k, n in enumerate("abc")}
    want = ort.InferenceSession(m.SerializeToString()).run(None, feeds)[0]
    assert sums_as_adds(m) == 1  # a one-input Sum is left alone
    onnx.checker.check_model(m)
    assert [n.op_type for n in m.graph.node] == ["Add", "Add", "Sum"]
    got = ort.InferenceSession(m.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_gemm_as_1x1_conv_and_bn_folding_keep_the_function():
    import onnx

    from tvmq.export.model import conv_layers, gemm_to_conv, materialize
    from tvmq.quantize import fold_batchnorms

    m = materialize(onnx.load(str(ALEXNET)), 1)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    ref = ort(m, x)
    g = onnx.ModelProto()
    g.CopyFrom(m)
    assert len(gemm_to_conv(g)) == 3
    assert not [n for n in g.graph.node if n.op_type == "Gemm"]
    assert len(conv_layers(g)) == 8
    np.testing.assert_allclose(ort(g, x), ref, rtol=1e-4, atol=1e-6)
    r = materialize(onnx.load(str(RESNET)), 2)
    x2 = np.random.default_rng(1).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    ref2 = ort(r, x2)
    assert len(fold_batchnorms(r)) == 53
    np.testing.assert_allclose(ort(r, x2), ref2, rtol=1e-3, atol=1e-5 * np.abs(ref2).max())


@needs_light
@pytest.mark.llvm
def test_squeezenet_kmeans_end_to_end_vs_onnxruntime(tmp_path, capsys):
    out = tmp_path / "sq"
    assert main(["export", "--model", str(SQUEEZENET), "--random-weights", "0", "--quantize", "kmeans",
                 "--logs", str(tmp_path / "none"), "--out", str(out)]) == 0
    assert (out / "source.onnx").is_file()
    man = json.loads((out / "manifest.json").read_text())
    layers = man["model"]["layers"]
    # 26 convs, 5 of them (a squeeze conv reading a fire module's concat) run as one conv per concat input
    assert len(man["model"]["graph"]["concat_conv_split"]) == 5
    assert len(layers) == 31 and all(r["kernel"] for r in layers)
    # one kernel per distinct layer shape, not per layer
    assert len(man["functions"]) < 31
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(out / "source.onnx"), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["compare_onnx"]["relative"] <= 1e-4 and r["compare_onnx"]["warning"] is None
    # the quantization's own effect on the float model's output is visible, and reported
    assert r["compare_onnx"]["float_relative"] > r["compare_onnx"]["relative"]


DATA = Path(__file__).resolve().parents[1] / "tvmq" / "data"


def export_digits(tmp_path, quantize: str) -> Path:
    """The digits CNN exported with ``--quantize`` (activations calibrated on the test digits)."""
    out = tmp_path / quantize
    assert main(["export", "--model", str(DATA / "digits_cnn.onnx"), "--quantize", quantize, "--calib",
                 str(DATA / "digits_test.npz"), "--out", str(out)]) == 0
    return out


def run_digits(out: Path, tmp_path, capsys) -> dict:
    """``tvmq run`` on an export: against onnxruntime and top-1 on the test digits (its --json)."""
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(DATA / "digits_cnn.onnx"), "--eval",
                 str(DATA / "digits_test.npz"), "--json", str(tmp_path / "r.json")]) == 0
    return json.loads((tmp_path / "r.json").read_text())


@pytest.mark.llvm
def test_int8_model_with_calibration_keeps_accuracy(tmp_path, capsys):
    out = export_digits(tmp_path, "int8")
    man = json.loads((out / "manifest.json").read_text())
    # dequantize, with the conv's bias (and ReLU) fused into the same epilogue
    assert all(f["variant"] == "int8" and f["epilogue_override"]["epilogue"] == "dequant" and f["epilogue_override"]["bias"]
               for f in man["functions"])
    with np.load(out / "weights.npz", allow_pickle=False) as z:
        assert z["w001_q"].dtype == np.int8 and z["w001_xzp"].dtype == np.int32
    r = run_digits(out, tmp_path, capsys)
    # the reference rounds each conv's input as the kernel does: only float rounding is left
    assert r["compare_onnx"]["relative"] <= 1e-4
    assert r["eval"]["exported"] >= r["eval"]["onnx"] - 0.02


@pytest.mark.llvm
def test_kmeans_int8_model_runs_the_integer_codebook_kernel_and_keeps_accuracy(tmp_path, capsys):
    out = export_digits(tmp_path, "kmeans_int8")
    man = json.loads((out / "manifest.json").read_text())
    assert man["model"]["quantize"]["bits"] == 4 and man["model"]["quantize"]["variant"] == "codebook_int8"
    assert man["functions"] and all(f["variant"] == "codebook_int8" for f in man["functions"])
    with np.load(out / "weights.npz", allow_pickle=False) as z:
        cb = [k for k in z.files if k.endswith("_cb")]
        assert cb and all(z[k].dtype == np.int8 and z[k].shape == (64,) for k in cb)
        assert len(np.unique(z[cb[0]])) <= 16 + 1  # 16 centroids and the zero padding
        assert all(z[k].dtype == np.uint8 for k in z.files if k.endswith("_idx"))  # 4-bit, two per byte
    r = run_digits(out, tmp_path, capsys)
    assert r["compare_onnx"]["relative"] <= 1e-4
    assert r["eval"]["exported"] >= r["eval"]["onnx"] - 0.03


def _grouped_1x1_net(path: Path) -> Path:
    """x (24 ch) -> 1x1 conv, 4 groups of 6 -> 6 channels, bias, ReLU -> plain 1x1 conv to 8: ShuffleNet's
    grouped 1x1 convolution at a small size, its per-group channel counts no multiple of 16 or 4."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in [("w1", (24, 6, 1, 1)), ("b1", (24,)), ("w2", (8, 24, 1, 1))]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="g4", kernel_shape=[1, 1], group=4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"], name="pw", kernel_shape=[1, 1])]
    return save_graph(path, "grouped_1x1", nodes, inits, [1, 24, 7, 7], [1, 8, 7, 7])


@pytest.mark.llvm
@pytest.mark.parametrize("quantize", ["none", "kmeans", "int8", "kmeans_int8"])
def test_grouped_1x1_conv_runs_one_call_or_per_group_kernels_padded_to_16_channels(tmp_path, capsys, quantize):
    """Float: one gathered kernel call, each group's outputs padded to 16. Integer activations: one
    group-read call, each group's 6 input channels padded to 8 (VNNI's 4-channel block), its outputs to
    16. kmeans (float activations, a codebook kernel): each group's kernel computes 16 output channels
    (6 sliced back) on the default schedule's 16 lanes. The plain conv keeps its own 8 channels (its task
    and records unchanged); outputs match onnxruntime."""
    src = _grouped_1x1_net(tmp_path / "g.onnx")
    out = tmp_path / "export"
    assert main(["export", "--model", str(src), "--quantize", quantize, "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    g4, pw = rows["g4"], rows["pw"]
    if quantize == "none":  # one gathered call: each group's 6 outputs padded to a 16-channel block
        assert g4["groups"] == 4 and g4["workload"]["c_out"] == 64 and g4["input_layout"] == "gathered"
        assert [p["out_channels"] for p in g4["pieces"]] == [[0, 24]]
        assert g4["pieces"][0]["out_rows"] == [g * 16 + k for g in range(4) for k in range(6)]
    elif quantize.endswith("int8"):  # one group-read call; the input (6 channels a group) packed at 8
        assert g4["groups"] == 4 and g4["workload"]["c_out"] == 64
        assert g4["input_layout"] == "packed, group read (base 0, stride 8)"
        assert g4["pieces"][0]["out_rows"] == [g * 16 + k for g in range(4) for k in range(6)]
    else:
        assert g4["groups"] == 4 and g4["workload"]["c_out"] == 16
        assert [p["out_channels"] for p in g4["pieces"]] == [[0, 6], [6, 12], [12, 18], [18, 24]]
        assert all(p["c_out_padded"] == 16 for p in g4["pieces"])
    assert g4["workload"]["c_in"] == (8 if quantize.endswith("int8") else 6)  # integer activations only
    assert {f["name"]: f for f in man["functions"]}[g4["kernel"]]["config"]["ob"] == 16
    # with integer activations an ungrouped conv with an odd count is padded too (8 outputs -> 16)
    assert pw["groups"] == 1 and pw["workload"]["c_out"] == (16 if quantize.endswith("int8") else 8)
    assert pw["pieces"][0]["out_channels"] == [0, 8]
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(src), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())["compare_onnx"]
    # float activations: the kernels' rounding only; int8 activations add their own quantization error
    assert r["ok"] and r["relative"] <= (2e-2 if quantize.endswith("int8") else 1e-4) and r["warning"] is None


def test_a_group_with_a_tuning_record_keeps_its_channel_count(monkeypatch):
    """The padding is the untuned default's: a per-group workload with a record of its own keeps it."""
    from tvmq.export import kernel_shapes as KS
    from tvmq.export import relax_kernels as RK
    from tvmq.export.onnx_prep import ModelOptions
    from tvmq.targets import get_target
    from tvmq.workload import ConvWorkload

    def plan(q):
        return RK._Plan([], ModelOptions(quantize=q).check(), get_target("host"), [])

    wl = ConvWorkload("g", 1, 6, 7, 7, 6, 1, 1)
    assert plan("int8")._padded_workload(wl) == ConvWorkload("g", 1, 8, 7, 7, 16, 1, 1)
    assert plan("none")._padded_workload(wl) == ConvWorkload("g", 1, 6, 7, 7, 16, 1, 1)  # float: input as is
    even = ConvWorkload("g", 1, 8, 7, 7, 16, 1, 1)
    assert plan("int8")._padded_workload(even) is even  # nothing to pad
    monkeypatch.setattr(KS, "best_record", lambda task, records: {"config": {}} if task.workload == wl else None)
    assert plan("int8")._padded_workload(wl) is wl
