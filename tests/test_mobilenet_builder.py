"""scripts/make_mobilenet_v2.py: MobileNet-v2 and a tiny residual net with depthwise layers, as ONNX."""

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest

from tvmq.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("make_mobilenet_v2", ROOT / "scripts" / "make_mobilenet_v2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MB = _load()


def _ort(model, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = 1, 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"input": x})[0]


def _attr(node, name, default=None):
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _depthwise(model):
    inits = {t.name: t for t in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type == "Conv" and _attr(n, "group", 1) > 1:
            w = inits[n.input[1]]
            assert w.dims[1] == 1 and w.dims[0] == _attr(n, "group")  # one input channel per group: depthwise
            out.append(n)
    return out


def test_tiny_net_builds_checks_and_runs_in_onnxruntime():
    m = MB.tiny(seed=0)
    onnx.checker.check_model(m, full_check=True)
    assert m.ir_version == 9 and [(o.domain, o.version) for o in m.opset_import] == [("", 17)]
    ops = [n.op_type for n in m.graph.node]
    assert len(_depthwise(m)) == 3 and ops.count("Add") == 2  # residual adds
    clips = [n for n in m.graph.node if n.op_type == "Clip"]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    assert clips and all(inits[c.input[1]] == 0.0 and inits[c.input[2]] == 6.0 for c in clips)  # ReLU6
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    y = _ort(m, x)
    assert y.shape == (2, 10) and np.isfinite(y).all() and y.std() > 1e-2  # not degenerate
    np.testing.assert_array_equal(y, _ort(MB.tiny(seed=0), x))  # seeded
    assert not np.allclose(y, _ort(MB.tiny(seed=1), x))
    # the batch-norm form computes the same kind of net and checks too
    onnx.checker.check_model(MB.tiny(seed=0, batchnorm=True), full_check=True)


def test_mobilenet_v2_is_the_public_architecture():
    """Width 1.0, 224x224: 17 depthwise convs, 10 residual adds, 52 convs; with batch norms its
    trainable parameter count is torchvision's mobilenet_v2's, 3,504,872. It runs in onnxruntime
    with activations that stay in range (He init)."""
    m = MB.mobilenet_v2(batchnorm=True)
    inits = {t.name: t for t in m.graph.initializer}
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    total = sum(int(np.prod(t.dims)) for t in m.graph.initializer if len(t.dims))
    # torchvision counts a BN's scale and bias, not its running mean and variance
    assert total - 2 * sum(int(inits[n.input[1]].dims[0]) for n in bn) == 3_504_872
    m = MB.mobilenet_v2()
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("Conv") == 52 and ops.count("Add") == 10 and len(_depthwise(m)) == 17
    assert [n.op_type for n in m.graph.node[-3:]] == ["GlobalAveragePool", "Flatten", "Gemm"]
    y = _ort(m, np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))
    assert y.shape == (1, 1000) and np.isfinite(y).all() and 0.3 < y.std() < 10
    assert MB.make_divisible(32 * 0.35) == 16 and MB.mobilenet_v2(0.5, 96).graph.input[0].type.tensor_type \
        .shape.dim[2].dim_value == 96


def test_script_writes_the_file(tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert MB.main([str(out), "--tiny", "--seed", "3"]) == 0
    assert "3 depthwise convs" in capsys.readouterr().out
    onnx.checker.check_model(str(out), full_check=True)


@pytest.mark.llvm
def test_tiny_net_exports_and_matches_onnxruntime(tmp_path, capsys):
    """`tvmq export --quantize none` on the tiny net: the depthwise layers run as Relax conv2d (or on a
    tvmq kernel where one covers them), the rest on tvmq kernels; the export matches onnxruntime."""
    src = tmp_path / "tiny.onnx"
    onnx.save(MB.tiny(seed=0), str(src))
    out = tmp_path / "tiny-float"
    assert main(["export", "--model", str(src), "--quantize", "none", "--out", str(out)]) == 0
    assert main(["run", str(out), "--compare-onnx", str(src)]) == 0
    assert "-> ok" in capsys.readouterr().out
