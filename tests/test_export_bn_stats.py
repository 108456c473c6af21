"""export/bn_stats.py: BatchNormalization statistics fitted to the activations (onnxruntime only)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tvmq.export import bn_stats
from tvmq.quantize.evaluate import run


def _conv_bn(opset: int):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("w", rng.normal(0, 3, (4, 3, 3, 3))), ("s", np.ones(4)), ("b", np.zeros(4)),
        ("m", rng.uniform(-0.1, 0.1, 4)), ("v", rng.uniform(0.5, 1.5, 4))]]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-5)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_fitted_statistics_normalize_the_activations():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    for opset in (9, 18):  # ReduceMean's axes: an attribute, then an input
        m = _conv_bn(opset)
        before = run(m, x, ["y"], batch=2)[0]
        assert before.std() > 5  # random statistics leave the conv's scale (weights of std 3) in place
        assert bn_stats.fit(m, x) == 1
        y = run(m, x, ["y"], batch=2)[0]
        np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
        np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
        assert [n.op_type for n in m.graph.node] == ["Conv", "BatchNormalization"]  # the graph is unchanged


def test_a_model_without_batchnorm_is_left_alone():
    m = _conv_bn(13)
    del m.graph.node[1:]
    m.graph.output[0].name = "c"
    assert bn_stats.fit(m, np.zeros((2, 3, 8, 8), np.float32)) == 0
