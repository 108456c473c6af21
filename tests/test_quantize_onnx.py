"""ONNX in and out and the ``tvmq quantize`` CLI, end to end on the shipped digits CNN, plus each bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tvmq
from tvmq.cli import main
from tvmq.errors import TvmqError
from tvmq.quantize import QuantSpec, evaluate, fold_batchnorms, quantize_model, read_outputs, weight_layers
from tvmq.quantize import onnx_model

DATA = Path(tvmq.__file__).parent / "data"
MODEL, TEST = DATA / "digits_cnn.onnx", DATA / "digits_test.npz"


def cli(capsys, *argv):
    rc = main(["quantize", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def weights_of(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def save(model, path):
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def conv_bn_model():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("w", rng.normal(size=(3, 2, 3, 3))), ("b", rng.normal(size=3)), ("g", rng.uniform(0.5, 2, 3)),
        ("beta", rng.normal(size=3)), ("mu", rng.normal(size=3)), ("var", rng.uniform(0.5, 2, 3))]]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["bn"], name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "convbn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 5, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def matmul_const_model():
    w = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w, "W")),
             helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    g = helper.make_graph(nodes, "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def relu_model():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def empty_conv_model():
    m = conv_bn_model()
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.zeros((0, 2, 3, 3), np.float32), "w"))
    return m


# -- end to end on the shipped model -----------------------------------------------------------
def test_shipped_model_is_small_and_evaluates():
    assert MODEL.stat().st_size < 1 << 20
    m = onnx.load(str(MODEL))
    assert m.opset_import[0].version == 17 and m.ir_version == 9
    x, y = evaluate.load_dataset(TEST, m)
    assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == np.int64
    assert evaluate.top1(m, x, y) > 0.95


def test_cli_kmeans_end_to_end(capsys, tmp_path):
    out, rep = tmp_path / "q", tmp_path / "r.json"
    rc, stdout, err = cli(capsys, MODEL, "--method", "kmeans", "--bits", 4, "--eval", TEST, "--out", out, "--json", rep)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].split()[:4] == ["layer", "op", "shape", "method"] and "r packed" in lines[0]
    assert [ln.split()[0] for ln in lines[2:5]] == ["conv1", "conv2", "fc"] and lines[6].startswith("total")
    assert "top-1 on 540 samples" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["dequantized.onnx", "manifest.json", "weights.npz"]
    r = json.loads(rep.read_text())
    assert [layer["name"] for layer in r["layers"]] == ["conv1", "conv2", "fc"]
    assert all(0 <= layer["act_sparsity"] <= 1 and layer["distinct"] <= 16 for layer in r["layers"])
    assert r["layers"][1]["unique_kernels"]["total"] == 128 and r["layers"][2]["unique_kernels"] is None
    assert r["eval"]["float_top1"] > 0.95 and r["eval"]["quant_top1"] > 0.9
    assert abs(r["total"]["ratio_packed"] - r["total"]["ratio_formula"]) < 0.01
    # the npz decodes to exactly the weights in the dequantized model, which scores what the report says
    dq = weights_of(out / "dequantized.onnx")
    for name, w in read_outputs(out).items():
        assert np.array_equal(w, dq[name])
    x, y = evaluate.load_dataset(TEST, onnx.load(str(MODEL)))
    assert evaluate.top1(onnx.load(str(out / "dequantized.onnx")), x, y) == r["eval"]["quant_top1"]
    with np.load(out / "weights.npz", allow_pickle=False) as z:
        assert sum(z[k].nbytes for k in z.files) == r["total"]["bytes_packed"]


@pytest.mark.parametrize("args", [
    ["--method", "uniform", "--bits", 8, "--per-channel", "--scale", "pow2"],
    ["--method", "uniform", "--bits", 4, "--asymmetric", "--scale", "percentile", "--percentile", 99],
    ["--method", "uniform", "--bits", 16],
    ["--method", "fixed", "--bits", 8],
    ["--method", "fixed", "--bits", 6, "--fixed-frac", 4, "--rounding", "stochastic", "--seed", 3],
    ["--method", "kmeans", "--bits", 3, "--per-channel", "--init", "random"],
    ["--method", "kmeans", "--bits", 1, "--init", "log"],
])
def test_cli_each_method_writes_decodable_weights(capsys, tmp_path, args):
    rc, stdout, err = cli(capsys, MODEL, *args, "--out", tmp_path / "q")
    assert rc == 0, err
    assert "total" in stdout
    dq = weights_of(tmp_path / "q" / "dequantized.onnx")
    for name, w in read_outputs(tmp_path / "q").items():
        assert np.array_equal(w, dq[name])


def test_default_out_dir_and_rerun_replaces(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, MODEL, "--method", "kmeans", "--bits", 2)[0] == 0
    assert cli(capsys, MODEL, "--method", "kmeans", "--bits", 2, "--init", "density")[0] == 0
    man = json.loads((tmp_path / "digits_cnn_kmeans2" / "manifest.json").read_text())
    assert man["spec"]["init"] == "density"
    assert [p.name for p in tmp_path.iterdir()] == ["digits_cnn_kmeans2"]  # no temp or old folders left


def test_sweep(capsys, tmp_path):
    png, rep = tmp_path / "acc.png", tmp_path / "sweep.json"
    rc, stdout, err = cli(capsys, MODEL, "--sweep", "--init", "linear", "--eval", TEST, "--plot", png, "--json", rep)
    assert rc == 0, err
    assert "| bits | kmeans-linear | uniform-sym-minmax |" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = json.loads(rep.read_text())
    for rows in r["series"].values():
        assert [row["bits"] for row in rows] == list(range(8, 0, -1))
        assert rows[0]["top1"] >= r["float_top1"] - 0.01  # 8 bits keep the float accuracy
        assert rows[0]["nrmse"] < rows[-1]["nrmse"]


def test_help():
    p = subprocess.run([sys.executable, "-m", "tvmq", "quantize", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--method" in p.stdout and "--sweep" in p.stdout


# -- graphs ------------------------------------------------------------------------------------
def test_batchnorm_folds_without_changing_outputs(tmp_path):
    m = conv_bn_model()
    x = np.random.default_rng(2).normal(size=(2, 2, 5, 5)).astype(np.float32)
    before = evaluate.run(m, x)[0]
    folded = onnx.ModelProto()
    folded.CopyFrom(m)
    assert fold_batchnorms(folded) == ["conv"]
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Relu"]
    assert np.allclose(evaluate.run(folded, x)[0], before, atol=1e-5)
    mq = quantize_model(m, QuantSpec("uniform", 16))
    assert mq.folded == ["conv"] and np.allclose(evaluate.run(mq.model, x)[0], before, atol=1e-3)


def test_cli_reports_the_fold(capsys, tmp_path):
    rc, stdout, _ = cli(capsys, save(conv_bn_model(), tmp_path / "cb.onnx"), "--method", "kmeans", "--bits", 8,
                        "--out", tmp_path / "q")
    assert rc == 0 and "folded BatchNormalization into conv" in stdout


def test_constant_node_matmul_weights():
    m = matmul_const_model()
    (layer,) = weight_layers(m)
    assert (layer.op, layer.source, layer.axis, layer.array.shape) == ("MatMul", "constant", 1, (6, 4))
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    mq = quantize_model(m, QuantSpec("kmeans", 8, per_channel=True))
    assert mq.layers[0].arrays["codebook"].shape == (4, 256)
    assert np.allclose(evaluate.run(mq.model, x)[0], evaluate.run(m, x)[0], atol=1e-5)


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    mq = quantize_model(onnx.load(str(MODEL)), QuantSpec("kmeans", 2))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save", boom)
    with pytest.raises(OSError):
        onnx_model.write_outputs(mq, tmp_path / "q")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "notes.txt").write_text("mine")
    mq = quantize_model(onnx.load(str(MODEL)), QuantSpec("kmeans", 2))
    with pytest.raises(TvmqError, match="not a tvmq quantize output"):
        onnx_model.write_outputs(mq, tmp_path / "q")
    assert (tmp_path / "q" / "notes.txt").read_text() == "mine"


# -- bad input: one line each, nothing written ---------------------------------------------------
def _not_onnx(p):
    p.write_text("this is not a protobuf\n" * 3)
    return p


def _dataset(p, x=None, y=None, **extra):
    z = np.load(TEST)
    arrays = dict(x=z["x"] if x is None else x, y=z["y"] if y is None else y, **extra)
    np.savez(p, **{k: v for k, v in arrays.items() if v is not False})
    return p


BAD = {
    "not onnx": (lambda d: [_not_onnx(d / "m.onnx"), "--method", "kmeans", "--bits", 4], "is not an ONNX model"),
    "missing file": (lambda d: [d / "nope.onnx", "--method", "kmeans", "--bits", 4], "no such file"),
    "no conv": (lambda d: [save(relu_model(), d / "r.onnx"), "--method", "kmeans", "--bits", 4],
                "no Conv, Gemm or MatMul layer"),
    "kmeans bits 0": (lambda d: [MODEL, "--method", "kmeans", "--bits", 0], "bits must be an integer in 1..8"),
    "kmeans bits 9": (lambda d: [MODEL, "--method", "kmeans", "--bits", 9], "got 9"),
    "uniform bits 12": (lambda d: [MODEL, "--method", "uniform", "--bits", 12], "1..8, 16, 32"),
    "fixed bits 33": (lambda d: [MODEL, "--method", "fixed", "--bits", 33], "W must be an integer in 1..32"),
    "F > W": (lambda d: [MODEL, "--method", "fixed", "--bits", 8, "--fixed-frac", 9], "F=9 exceed the word width W=8"),
    "fixed per channel": (lambda d: [MODEL, "--method", "fixed", "--bits", 8, "--per-channel"],
                          "--per-channel does not apply to --method fixed"),
    "bad method": (lambda d: [MODEL, "--method", "pq", "--bits", 4], "--method must be one of"),
    "bad init": (lambda d: [MODEL, "--method", "kmeans", "--bits", 4, "--init", "pp"], "--init must be one of"),
    "no method": (lambda d: [MODEL, "--bits", 4], "--method and --bits are required"),
    "empty layer": (lambda d: [save(empty_conv_model(), d / "e.onnx"), "--method", "uniform", "--bits", 8],
                    "layer 'conv' weight 'w': empty tensor"),
    "x shape": (lambda d: [MODEL, "--method", "kmeans", "--bits", 4, "--eval",
                           _dataset(d / "d.npz", x=np.zeros((5, 1, 7, 7), np.float32), y=np.zeros(5, np.int64))],
                "x has shape [5, 1, 7, 7] but input 'x' of the model needs ['N', 1, 8, 8]"),
    "y length": (lambda d: [MODEL, "--method", "kmeans", "--bits", 4, "--eval",
                            _dataset(d / "d.npz", y=np.zeros(3, np.int64))], "y must be 540 integer labels"),
    "no y": (lambda d: [MODEL, "--method", "kmeans", "--bits", 4, "--eval", _dataset(d / "d.npz", y=False)],
             "lacks array(s) ['y']"),
    "labels": (lambda d: [MODEL, "--method", "kmeans", "--bits", 4, "--eval",
                          _dataset(d / "d.npz", y=np.full(540, 12, np.int64))], "labels span 12..12"),
    "sweep without data": (lambda d: [MODEL, "--sweep"], "--sweep needs --eval"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, case):
    make, message = BAD[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    argv = make(inputs)
    rc, stdout, err = cli(capsys, *argv, "--out", tmp_path / "q", "--json", tmp_path / "r.json")
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("tvmq quantize: error: ") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_cli_refuses_a_foreign_out_folder_before_working(capsys, tmp_path):
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "notes.txt").write_text("mine")
    rc, _, err = cli(capsys, MODEL, "--method", "kmeans", "--bits", 4, "--out", tmp_path / "q")
    assert rc == 2 and err.count("\n") == 1 and "not a tvmq quantize output" in err
    assert [p.name for p in (tmp_path / "q").iterdir()] == ["notes.txt"]
