"""Shared by the export tests: a tiny ONNX graph written to a file (onnx.helper, checked)."""

from pathlib import Path


def save_graph(path: Path, name: str, nodes, inits, x_shape, y_shape, opset: int = 13) -> Path:
    """One float input ``x`` and output ``y`` of the given shapes; IR 8, checked, saved to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path
