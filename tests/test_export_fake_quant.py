"""export/fake_quant.py: a conv's input rounded to uint8 as tvmq's kernels read it (onnxruntime only)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tvmq.export.fake_quant import quantize_conv_inputs
from tvmq.quantize.evaluate import run


def test_conv_reads_its_input_on_the_uint8_grid():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (2, 3, 1, 1)).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Conv", ["y", "w2"], ["z"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.ones((1, 2, 1, 1), np.float32), "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    act = {"scale": 0.01, "zero_point": 100}
    assert quantize_conv_inputs(m, {"w": act}) == 1  # only the conv of weight "w"
    x = rng.uniform(-1.5, 1.5, (1, 3, 4, 4)).astype(np.float32)
    q = np.clip(np.round(x * np.float32(1 / 0.01)) + 100, 0, 255)  # the export's rounding (and clipping)
    xq = ((q - 100) * np.float32(0.01)).astype(np.float32)
    want = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], xq).sum(1, keepdims=True)
    np.testing.assert_allclose(run(m, x, ["z"], batch=1)[0], want, rtol=1e-5, atol=1e-5)
    assert xq.min() == np.float32(-1.0) and xq.max() < 1.56  # clipped to 0..255 around the zero point


def test_residual_add_reads_the_skip_as_rounded_where_the_export_wrote_it_uint8():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (3, 3, 1, 1)).astype(np.float32)

    def model(op):
        g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node(op, ["y", "x"], ["z"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])

    act = {"scale": 0.02, "zero_point": 0}
    x = rng.uniform(-1, 1, (1, 3, 4, 4)).astype(np.float32)
    xq = (np.clip(np.round(x * np.float32(1 / 0.02)), 0, 255) * np.float32(0.02)).astype(np.float32)
    conv = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], xq)
    for op in ("Add", "Sum"):  # ResNet-50's light model writes its residual adds as Sum
        plain, u8 = model(op), model(op)
        quantize_conv_inputs(plain, {"w": act})
        quantize_conv_inputs(u8, {"w": act}, ("w",))
        np.testing.assert_allclose(run(plain, x, ["z"], batch=1)[0], conv + x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run(u8, x, ["z"], batch=1)[0], conv + xq, rtol=1e-5, atol=1e-5)
