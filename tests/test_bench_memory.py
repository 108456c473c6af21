"""bench.memory: the peak resident memory that loading and running a model adds, in a fresh process."""

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tvmq.bench.memory import PeakMemory, peak_of

linux = pytest.mark.skipif(not sys.platform.startswith("linux") or not PeakMemory.supported(),
                           reason="needs Linux's /proc/self/clear_refs (resetting the peak resident memory)")


@linux
def test_peak_memory_sees_a_freed_allocation():
    """64 MB allocated and freed inside the block: the peak saw it, though the memory is gone at exit."""
    with PeakMemory() as m:
        a = np.ones(8 << 20)  # 64 MB, touched
        del a
    assert m.bytes is not None and 56 << 20 <= m.bytes < 256 << 20
    with PeakMemory() as small:
        b = np.ones(1 << 10)
    assert small.bytes < 8 << 20 and b.sum() == 1024


@linux
def test_peak_of_an_onnx_model_grows_with_its_weights(tmp_path, capsys):
    """onnxruntime's session holds its weights: a 16 MB MatMul weight shows, a 16 kB one does not."""
    def model(n, path):
        w = helper.make_tensor("w", TensorProto.FLOAT, [n, n], np.ones((n, n), np.float32).ravel())
        g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [w])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
        return path

    big = peak_of("onnx", model(2048, tmp_path / "big.onnx"), (1, 2048), threads=1)
    small = peak_of("onnx", model(64, tmp_path / "small.onnx"), (1, 64), threads=1)
    assert big >= 16 << 20 and small < big / 2, (big, small)
    assert peak_of("onnx", tmp_path / "missing.onnx", (1, 64), threads=1) is None  # a failed child: no number
    assert "peak memory of onnx" in capsys.readouterr().err  # ... and a warning with its reason
