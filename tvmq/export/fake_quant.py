"""The reference of an export with integer activations: each tvmq convolution's input rounded to the
uint8 grid it reads (quantize, then dequantize), so onnxruntime computes what the kernels compute and
the comparison sees the arithmetic, not the quantization.

The rounding mirrors the export's (``round(x * (1/scale)) + zero_point``, clipped to 0..255) with
opset-6 operators (Floor of x + 0.5: ties round up, not to even, which random data never meets).
"""

from __future__ import annotations

import numpy as np


def quantize_conv_inputs(model, acts: dict[str, dict], uint8_residuals: tuple[str, ...] = ()) -> int:
    """In place: every Conv whose weight initializer is a key of ``acts`` reads its data input through
    uint8 quantize-dequantize with that ``{"scale", "zero_point"}``; returns how many convs.

    The Add after each Conv whose weight is in ``uint8_residuals`` reads its other operand rounded too,
    where a conv quantized that tensor: the export's epilogue reads the uint8 copy the kernel wrote."""
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    nodes, consts, done, rounded = [], [], 0, {}
    for n in g.node:
        act = acts.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        if act is None:
            nodes.append(n)
            continue
        p = f"_tvmq_fq{done}"
        s, zp = np.float32(act["scale"]), np.float32(act["zero_point"])
        consts += [(f"{p}.inv", np.float32(1.0) / s), (f"{p}.zp_half", zp + np.float32(0.5)),
                   (f"{p}.lo", np.float32(0.0)), (f"{p}.hi", np.float32(255.0)), (f"{p}.zp", zp), (f"{p}.s", s)]
        nodes += [helper.make_node("Mul", [n.input[0], f"{p}.inv"], [f"{p}.a"]),
                  helper.make_node("Add", [f"{p}.a", f"{p}.zp_half"], [f"{p}.b"]),
                  helper.make_node("Floor", [f"{p}.b"], [f"{p}.q"]),
                  helper.make_node("Max", [f"{p}.q", f"{p}.lo"], [f"{p}.q0"]),
                  helper.make_node("Min", [f"{p}.q0", f"{p}.hi"], [f"{p}.q1"]),
                  helper.make_node("Sub", [f"{p}.q1", f"{p}.zp"], [f"{p}.c"]),
                  helper.make_node("Mul", [f"{p}.c", f"{p}.s"], [f"{p}.x"])]
        rounded.setdefault(n.input[0], f"{p}.x")
        n.input[0] = f"{p}.x"
        nodes.append(n)
        done += 1
    _round_residuals(nodes, rounded, set(uint8_residuals))
    g.initializer.extend(numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts)
    del g.node[:]
    g.node.extend(nodes)
    return done


def _round_residuals(nodes, rounded: dict, convs: set) -> None:
    """The residual Add (or two-input Sum) of each Conv whose weight is in ``convs`` reads its skip operand as rounded."""

    out_of = {n.output[0]: n for n in nodes if n.op_type == "Conv" and n.input[1] in convs}
    for n in nodes:
        if n.op_type not in ("Add", "Sum") or len(n.input) != 2:
            continue
        for i in (0, 1):
            if n.input[i] in out_of and n.input[1 - i] in rounded:
                n.input[1 - i] = rounded[n.input[1 - i]]
                break
